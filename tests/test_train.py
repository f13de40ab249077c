"""The training engine, recipes and losses: each loss against a hand computation, the sync
switch, KD adapters, kill-and-resume, NaN handling, DDP, and the ``train`` command."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from conftest import ROOT, cli
from harness.errors import BadInput
from harness.families.lipsync.synthetic import SyntheticSpec, generate_dataset
from harness.train import engine, losses
from harness.train.lipsync import ExpertTrainable, GeneratorTrainable, kd_adapters
from harness.train.recipe import load_recipe, parse_recipe

TINY = SyntheticSpec(identities=3, splits=(1, 1, 1), clips_per_identity=2, seconds=1.2,
                     frame_size=80, crop_size=56)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    return generate_dataset(tmp_path_factory.mktemp("train-data") / "synth", TINY, videos=False)


def _recipe(name, **over):
    base = {"steps": 4, "batch_size": 2, "eval_every": 2, "eval_batches": 1, "checkpoint_every": 2}
    return load_recipe(name, {**base, **over})


def _models():
    from harness.derive import get_variant
    torch.manual_seed(0)
    return (get_variant("nota-wav2lip").build(), get_variant("wav2lip-nores-w2").build(),
            get_variant("wav2lip-syncnet").build())


# ---------------------------------------------------------------- recipes

def test_builtin_recipes_are_wav2lips_settings():
    exp, gen = load_recipe("expert"), load_recipe("generator")
    assert (exp.batch_size, exp.optimiser.lr, exp.losses) == (64, 1e-4, {"sync_bce": 1.0})
    assert (gen.batch_size, gen.optimiser.lr, gen.losses) == (16, 1e-4, {"l1": 1.0})
    assert (gen.sync.below, gen.sync.before, gen.sync.after) == (0.75, 0.0, 0.01)
    assert load_recipe("distill").losses == {"l1": 1.0, "output_kd": 1.0, "feature_kd": 1.0}
    assert load_recipe("evaluator").seed != exp.seed
    hq = load_recipe("generator-hq")
    assert (hq.batch_size, hq.optimiser.lr, hq.optimiser.betas, hq.losses) == (16, 1e-4, (0.5, 0.999), {"l1": 1.0})
    assert (hq.sync.below, hq.sync.after) == (0.75, 0.03)
    assert (hq.disc.variant, hq.disc.weight, hq.disc.lr, hq.disc.betas) == ("wav2lip-disc-qual", 0.07, 1e-4, (0.5, 0.999))


def test_recipe_errors_name_the_file_and_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntask: generator\nsteps: -3\nbatch_size: 2\nlosses: {l1: 1}\n")
    with pytest.raises(BadInput, match=r"bad.yaml.*\n.*field steps"):
        load_recipe(str(bad))
    bad.write_text("name: x\ntask: generator\nsteps: 3\nbatch_size: 2\nlosses: {l2: 1}\n")
    with pytest.raises(BadInput, match=r"unknown loss 'l2'.*losses.l2"):
        load_recipe(str(bad))
    with pytest.raises(BadInput, match="unknown recipe 'nope'"):
        load_recipe("nope")
    with pytest.raises(BadInput, match="field optimiser.lr"):
        parse_recipe({"name": "x", "task": "expert", "steps": 1, "batch_size": 1,
                      "losses": {"sync_bce": 1}, "optimiser": {"lr": 0}}, "recipe test")


# ---------------------------------------------------------------- losses by hand

def test_expert_loss_is_bce_of_the_cosine(data_root):
    _, _, expert = _models()
    t = ExpertTrainable(expert, data_root, _recipe("expert"))
    batch = torch.utils.data.default_collate([t.dataset("train")[i] for i in range(4)])
    ctx = t(batch)
    got = engine.compute_losses(ctx, {"sync_bce": 1.0})["sync_bce"]
    a, v = expert(batch[0], batch[1])
    cos = (a * v).sum(1) / (a.norm(dim=1) * v.norm(dim=1))
    y = batch[2].float()
    want = -(y * torch.log(cos) + (1 - y) * torch.log(1 - cos)).mean()
    assert torch.allclose(got, want, atol=1e-5)
    assert batch[1].shape == (4, 15, 48, 96) and batch[0].shape == (4, 1, 80, 16)


def test_generator_loss_is_wav2lips_mix_and_the_switch(data_root):
    student, _, expert = _models()
    r = _recipe("generator")
    t = GeneratorTrainable(student, data_root, r, expert=expert)
    assert t.loss_weights(r) == {"l1": 1.0, "sync": 0.0}
    assert t.after_eval({"sync": 0.80}, 2) is None and t.sync_weight == 0.0
    assert "0.0 -> 0.01" in t.after_eval({"sync": 0.70}, 4) and t.sync_weight == 0.01
    assert t.after_eval({"sync": 0.90}, 6) is None and t.sync_weight == 0.01   # stays switched
    w = t.loss_weights(r)
    assert w == pytest.approx({"l1": 0.99, "sync": 0.01})
    batch = torch.utils.data.default_collate([t.dataset("train")[i] for i in range(2)])
    ctx = t(batch)
    parts = engine.compute_losses(ctx, w)
    total = losses.weighted_total(parts, w)
    g = ctx["pred"]
    l1 = (g - batch["y"]).abs().mean()
    lower = torch.cat([g[:, :, i, 48:] for i in range(5)], dim=1)
    a, v = expert(batch["mel"], lower)
    cos = F.cosine_similarity(a, v)
    sync = -torch.log(cos).mean()
    assert torch.allclose(total, 0.01 * sync + 0.99 * l1, atol=1e-5)
    # the masked input hides the lower half; the reference is another window of the clip
    assert batch["x"][:, :3, :, 48:].abs().sum() == 0
    assert not torch.equal(batch["x"][:, 3:], batch["y"])


def _hq(data_root, **over):
    from harness.derive import get_variant
    student, _, expert = _models()
    r = _recipe("generator-hq", **over)
    torch.manual_seed(1)
    return GeneratorTrainable(student, data_root, r, expert=expert,
                              disc=get_variant("wav2lip-disc-qual").build()), r


def test_hq_generator_loss_and_discriminator_step_by_hand(data_root):
    """Wav2Lip HQ: w*sync + 0.07*BCE(disc(g), 1) + (1-w-0.07)*L1; then the discriminator
    alone steps on BCE(disc(real), 1) + BCE(disc(g), 0) with its own Adam."""
    t, r = _hq(data_root)
    assert t.loss_weights(r) == pytest.approx({"l1": 0.93, "sync": 0.0, "disc_perceptual": 0.07})
    t.after_eval({"sync": 0.5}, 2)
    w = t.loss_weights(r)
    assert w == pytest.approx({"l1": 0.90, "sync": 0.03, "disc_perceptual": 0.07})
    own = {id(p) for p in t.disc.parameters()}
    assert not own & {id(p) for p in t.trained_parameters()}
    assert {id(p) for p in t.net.parameters()} <= {id(p) for p in t.trained_parameters()}
    batch = torch.utils.data.default_collate([t.dataset("train")[i] for i in range(2)])
    ctx = t(batch)
    total = losses.weighted_total(engine.compute_losses(ctx, w), w)
    g, y = ctx["pred"], batch["y"]
    lower = torch.cat([g[:, :, i, 48:] for i in range(5)], dim=1)
    a, v = t._frozen["expert"](batch["mel"], lower)
    sync = -torch.log(F.cosine_similarity(a, v)).mean()
    d = t.disc(g)
    perceptual = -torch.log(d).mean()
    assert torch.allclose(total, 0.03 * sync + 0.07 * perceptual + 0.90 * (g - y).abs().mean(), atol=1e-5)
    before = {k: v.clone() for k, v in t.disc.state_dict().items()}
    with torch.no_grad():
        want_real, want_fake = -torch.log(t.disc(y)).mean(), -torch.log(1 - t.disc(g)).mean()
    got = t.after_step(ctx, torch.autocast("cpu", enabled=False))
    assert got == pytest.approx({"disc_real": float(want_real), "disc_fake": float(want_fake)}, rel=1e-5)
    assert any(not torch.equal(before[k], v) for k, v in t.disc.state_dict().items())
    assert "disc_optimiser" in t.extra_state()


def test_an_unknown_discriminator_names_the_recipe_field(data_root):
    from harness.train.run import make_trainable
    r = _recipe("generator-hq", disc={"variant": "wav2lip-disc-qaul"})
    with pytest.raises(BadInput, match=r"recipe generator-hq: field disc.variant: unknown variant "
                                       r"'wav2lip-disc-qaul'; did you mean 'wav2lip-disc-qual'"):
        make_trainable({"from": "nota-wav2lip", "data_root": str(data_root)}, r, "cpu")


def test_hq_run_resumes_with_the_discriminator_state(data_root, tmp_path, monkeypatch):
    """Stopped after its step-2 checkpoint, an HQ run resumes (generator, discriminator and
    both optimisers) to the losses and bytes of an uninterrupted one."""
    from harness.train.run import train_into
    spec = {"label": "hq", "recipe": "generator-hq", "from": "nota-wav2lip", "data_root": str(data_root),
            "overrides": {"steps": 4, "batch_size": 2, "eval_every": 2, "eval_batches": 1,
                          "checkpoint_every": 2, "sync": None}}
    whole = train_into(spec, tmp_path / "whole", progress=False)
    step = GeneratorTrainable.after_step
    calls = {"n": 0}

    def stop_at_3(self, ctx, autocast):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return step(self, ctx, autocast)

    monkeypatch.setattr(GeneratorTrainable, "after_step", stop_at_3)
    with pytest.raises(KeyboardInterrupt):
        train_into(spec, tmp_path / "cut", progress=False)
    monkeypatch.setattr(GeneratorTrainable, "after_step", step)
    resumed = train_into(spec, tmp_path / "cut", progress=False)
    assert resumed["resumed_from_step"] == 2
    a, b = engine.read_log(tmp_path / "whole" / "log.jsonl"), engine.read_log(tmp_path / "cut" / "log.jsonl")
    assert [r["step"] for r in b] == [1, 2, 3, 4]
    for key in ("l1", "disc_perceptual", "disc_real", "disc_fake"):
        assert [r[key] for r in a] == [r[key] for r in b], key
    assert whole["checkpoint_sha256"] == resumed["checkpoint_sha256"]


def test_distill_losses_by_hand(data_root):
    student, teacher, expert = _models()
    r = _recipe("distill", sync=None, losses={"l1": 1.0, "output_kd": 0.5, "feature_kd": 2.0})
    t = GeneratorTrainable(student, data_root, r, expert=expert, teacher=teacher)
    assert len(t.adapters) == 14
    batch = torch.utils.data.default_collate([t.dataset("train")[i] for i in range(2)])
    ctx = t(batch)
    w = t.loss_weights(r)
    total = losses.weighted_total(engine.compute_losses(ctx, w), w)
    with torch.no_grad():
        tp = teacher(batch["indiv_mels"], batch["x"])
    feats_s, feats_t = ctx["student_feats"], ctx["teacher_feats"]
    fkd = sum(((a(s) - tt) ** 2).mean() for a, s, tt in zip(t.adapters, feats_s, feats_t)) / 14
    want = (ctx["pred"] - batch["y"]).abs().mean() + 0.5 * (ctx["pred"] - tp).abs().mean() + 2.0 * fkd
    assert torch.allclose(total, want, atol=1e-5)
    # adapters map student channels to the teacher's, block by block
    assert [a.weight.shape[:2] for a in t.adapters][0] == (feats_t[0].shape[1], feats_s[0].shape[1])


def test_kd_blocks_that_do_not_pair_name_both_sides():
    from torch import nn
    student, teacher, _ = _models()

    class Odd(nn.Module):
        def __init__(self):
            super().__init__()
            self.face_encoder_blocks = nn.ModuleList([nn.Conv2d(6, 4, 3, stride=2, padding=1)])

        def forward(self, mel, face):
            return self.face_encoder_blocks[0](face)

    with pytest.raises(BadInput, match=r"student block face_encoder_blocks.0 gives 4x96x96 but teacher "
                                       r"block face_encoder_blocks.0 gives 4x48x48"):
        kd_adapters(student, Odd(), ["face_encoder_blocks.0"])
    with pytest.raises(BadInput, match="the teacher has no block face_decoder_blocks.3"):
        kd_adapters(student, Odd(), ["face_decoder_blocks.3"])


def test_a_recipe_with_kd_losses_needs_a_teacher(data_root):
    student, _, expert = _models()
    with pytest.raises(BadInput, match="KD losses need a teacher"):
        GeneratorTrainable(student, data_root, _recipe("distill"), expert=expert)


# ---------------------------------------------------------------- the loop

def test_training_writes_checkpoints_log_curve_and_is_deterministic(data_root, tmp_path):
    from harness.train.run import train_into
    spec = {"label": "s", "recipe": "scratch", "from": "nota-wav2lip", "data_root": str(data_root),
            "overrides": {"steps": 4, "batch_size": 2, "eval_every": 2, "eval_batches": 1,
                          "checkpoint_every": 1, "keep_last": 2, "sync": None}}
    a = train_into(spec, tmp_path / "a", progress=False)
    b = train_into(spec, tmp_path / "b", progress=False)
    assert [p.name for p in engine.checkpoints(tmp_path / "a" / "checkpoints")] == \
        ["step-00000003.pt", "step-00000004.pt"]
    for name in ("final.pt", "best.pt", "log.jsonl", "curve.png", "train.json"):
        assert (tmp_path / "a" / name).is_file(), name
    la, lb = engine.read_log(tmp_path / "a" / "log.jsonl"), engine.read_log(tmp_path / "b" / "log.jsonl")
    assert [r["step"] for r in la] == [1, 2, 3, 4] and "val_l1" in la[1]
    assert [r["l1"] for r in la] == [r["l1"] for r in lb]
    assert a["checkpoint_sha256"] == b["checkpoint_sha256"]
    # the result loads strictly into the architecture, without unpickling code
    from harness.checkpoints import load_into
    from harness.derive import get_variant
    load_into(get_variant("nota-wav2lip").build(), tmp_path / "a" / "final.pt")


def test_worker_processes_load_the_same_data(data_root, tmp_path):
    from harness.train.run import train_into
    spec = {"label": "w", "recipe": "scratch", "from": "nota-wav2lip", "data_root": str(data_root),
            "overrides": {"steps": 3, "batch_size": 2, "eval_every": 3, "eval_batches": 1,
                          "checkpoint_every": 3, "sync": None}}
    train_into(spec, tmp_path / "w0", progress=False)
    train_into({**spec, "overrides": {**spec["overrides"], "workers": 2}}, tmp_path / "w2", progress=False)
    a, b = engine.read_log(tmp_path / "w0" / "log.jsonl"), engine.read_log(tmp_path / "w2" / "log.jsonl")
    assert [r["l1"] for r in a] == [r["l1"] for r in b]


def test_kill_and_resume_equals_an_uninterrupted_run(data_root, tmp_path):
    args = ["train", "scratch", "--from", "nota-wav2lip", "--data-root", data_root, "--steps", "8",
            "--batch-size", "2", "--set", "eval_every=4", "--set", "eval_batches=1",
            "--set", "checkpoint_every=3", "--set", "sync=null", "--no-progress"]
    whole = cli(*args, "--out", tmp_path / "whole")
    assert whole.returncode == 0, whole.stderr
    out = tmp_path / "killed"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", *map(str, args), "--out", str(out)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "checkpoints" / "step-00000003.pt").exists():
        assert proc.poll() is None and time.time() < deadline, "the run ended before its first checkpoint"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not (out / "final.pt").exists()
    resumed = cli(*args, "--out", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resumed at step" in resumed.stdout
    a, b = engine.read_log(tmp_path / "whole" / "log.jsonl"), engine.read_log(out / "log.jsonl")
    assert [r["step"] for r in b] == list(range(1, 9))
    assert [r["l1"] for r in a] == [r["l1"] for r in b]
    assert [r.get("val_l1") for r in a] == [r.get("val_l1") for r in b]
    assert (tmp_path / "whole" / "final.pt").read_bytes() == (out / "final.pt").read_bytes()


def test_a_nan_loss_stops_with_a_clear_message_and_keeps_the_last_good_checkpoint(data_root, tmp_path):
    from harness.train.run import train_into
    calls = {"n": 0}

    @losses.register_loss("nan_after_3", needs=("pred",))
    def nan_after_3(ctx):
        calls["n"] += 1
        return ctx["pred"].mean() * (float("nan") if calls["n"] > 3 else 1.0)

    try:
        spec = {"label": "n", "recipe": "scratch", "from": "nota-wav2lip", "data_root": str(data_root),
                "overrides": {"steps": 6, "batch_size": 2, "eval_every": 100, "checkpoint_every": 2,
                              "sync": None, "losses": {"l1": 1.0, "nan_after_3": 1.0}}}
        with pytest.raises(engine.TrainingFailed, match=r"step 4: loss nan_after_3 is nan.*Last good "
                                                        r"checkpoint: .*step-00000002.pt"):
            train_into(spec, tmp_path / "n", progress=False)
        assert (tmp_path / "n" / "checkpoints" / "step-00000002.pt").is_file()
        assert not (tmp_path / "n" / "final.pt").exists()
    finally:
        losses.losses._items.pop("nan_after_3", None)


def test_the_train_command_on_a_real_layout_folder(tmp_path):
    """An LRS-layout folder that is not synthetic (no marker): frames and audio as files."""
    import cv2
    from scipy.io import wavfile
    root = tmp_path / "lrs"
    rng = np.random.default_rng(0)
    for split, names in (("train", ["spk1/00001", "spk1/00002"]), ("val", ["spk2/00001"])):
        for name in names:
            d = root / name
            d.mkdir(parents=True)
            for f in range(20):
                cv2.imwrite(str(d / f"{f}.jpg"), rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
            wavfile.write(d / "audio.wav", 16000, (rng.standard_normal(16000 * 20 // 25) * 3000).astype(np.int16))
        (root / "filelists").mkdir(exist_ok=True)
        (root / "filelists" / f"{split}.txt").write_text("\n".join(names) + "\n")
    r = cli("train", "expert", "--data-root", root, "--steps", "2", "--batch-size", "2", "--set",
            "eval_every=2", "--set", "eval_batches=1", "--out", tmp_path / "out", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "trained wav2lip-syncnet by recipe expert: 2 steps" in r.stdout
    prov = json.loads((tmp_path / "out" / "train.json").read_text())
    assert prov["data"]["synthetic"] is False and prov["data"]["clips"] == 3
    bad = cli("train", "expert", "--data-root", tmp_path, "--steps", "2")
    assert bad.returncode == 2 and "filelists/train.txt" in bad.stderr
    bad = cli("train", "generator", "--data-root", root, "--set", "optimiser.lr=-1")
    assert bad.returncode == 2 and "field optimiser.lr" in bad.stderr


def _run_ddp(out, steps, procs, *extra):
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "tests")]),
           "OMP_NUM_THREADS": "1"}
    if procs == 1:
        cmd = [sys.executable, str(ROOT / "tests" / "ddp_step.py"), str(out), str(steps), *extra]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={procs}",
               str(ROOT / "tests" / "ddp_step.py"), str(out), str(steps), *extra]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    return torch.load(out / "final.pt", weights_only=True)


def test_ddp_with_two_processes_averages_gradients(tmp_path):
    """Two gloo processes with 2 samples each take the same steps as one process on the
    combined batch of 4: DDP averages the gradients (the model has no BatchNorm; with
    BatchNorm each process normalises by its own batch, as DDP does without SyncBatchNorm)."""
    single = _run_ddp(tmp_path / "one", 3, 1)
    ddp = _run_ddp(tmp_path / "two", 3, 2)
    for k in single:
        assert torch.allclose(single[k], ddp[k], atol=1e-6), k
    start = _run_ddp(tmp_path / "zero", 1, 1)
    assert any(not torch.allclose(start[k], ddp[k]) for k in start)   # the steps moved the weights


def test_ddp_averages_the_discriminators_gradients_too(tmp_path):
    """The discriminator steps outside the DDP forward; its gradients are averaged by hand,
    so two processes still equal one on the combined batch, generator and discriminator."""
    single = _run_ddp(tmp_path / "one", 3, 1, "disc")
    ddp = _run_ddp(tmp_path / "two", 3, 2, "disc")
    assert any(k.startswith("disc.") for k in single)
    for k in single:
        assert torch.allclose(single[k], ddp[k], atol=1e-6), k
    start = _run_ddp(tmp_path / "zero", 1, 1, "disc")
    assert any(not torch.allclose(start[k], ddp[k]) for k in start if k.startswith("disc."))


NAN_PLUGIN = '''
from harness import register_loss

@register_loss("always_nan", needs=("pred",))
def always_nan(ctx):
    return ctx["pred"].mean() * float("nan")
'''


def _tiny_synthetic():
    return {"identities": 3, "clips_per_identity": 1, "seconds": 1.2, "splits": [1, 1, 1],
            "frame_size": 80, "crop_size": 56}


def test_trained_variants_in_a_suite_record_their_training_and_a_nan_cell_fails_alone(tmp_path):
    from conftest import write_suite
    plugin = tmp_path / "nan_plugin.py"
    plugin.write_text(NAN_PLUGIN)
    short = {"steps": 2, "batch_size": 2, "eval_every": 2, "eval_batches": 1, "checkpoint_every": 1,
             "sync": None}
    suite = tmp_path / "s.yaml"
    write_suite(suite, name="trained", data={"layout": "lrs", "filelist": "filelists/test.txt",
                                             "synthetic": _tiny_synthetic()},
                variants=[{"name": "small", "from": "nota-wav2lip", "train": {"recipe": "scratch", **short}},
                          {"name": "broken", "from": "nota-wav2lip",
                           "train": {"recipe": "scratch", **short, "losses": {"l1": 1.0, "always_nan": 1.0}}},
                          "small@bf16"],
                metrics=["params", "size_mb"])
    r = cli("run", suite, "--out", tmp_path / "run", "--plugin", plugin, "--no-progress")
    assert r.returncode == 2, r.stderr
    assert "broken / params" in r.stderr and "loss always_nan is nan" in r.stderr
    recs = [json.loads(x) for x in (tmp_path / "run" / "records.jsonl").read_text().splitlines()]
    by = {(x["variant"], x["metric"]): x for x in recs}
    assert by[("broken", "params")]["status"] == "failed"
    ok = by[("small", "params")]
    assert ok["status"] == "ok" and ok["value"] == 1258143
    t = ok["provenance"]["training"]
    assert t["recipe"] == "scratch" and t["steps"] == 2 and t["data"]["synthetic"] is True
    assert set(t["final_losses"]) == {"l1", "loss"} and len(t["checkpoint_sha256"]) == 64
    assert ok["provenance"]["weights"].startswith("trained by the harness (recipe scratch, 2 steps)")
    assert (tmp_path / "run" / "training" / "small.png").is_file()
    assert by[("small@bf16", "params")]["status"] == "ok"
    table = (tmp_path / "run" / "table.md").read_text()
    assert "trained by the harness: small (scratch, 2 steps, synthetic data)" in table
    # a second run resumes: nothing is trained or computed again
    again = cli("run", suite, "--out", tmp_path / "run", "--plugin", plugin, "--no-progress")
    assert "0 cells computed" in again.stdout or "already recorded" in again.stdout


def test_suite_training_errors_name_the_entry(tmp_path):
    from conftest import write_suite
    suite = tmp_path / "s.yaml"
    data = {"layout": "lrs", "synthetic": _tiny_synthetic()}
    write_suite(suite, data=data, variants=[{"name": "kd", "from": "nota-wav2lip",
                                             "distill": {"recipe": "distill", "teacher": "nobody"}}])
    r = cli("run", suite, "--out", tmp_path / "r1")
    assert r.returncode == 2 and "variants[0] (kd)" in r.stderr and "'nobody'" in r.stderr
    write_suite(suite, data=data, variants=[{"name": "x", "from": "nota-wav2lip",
                                             "train": {"recipe": "scratch", "stepz": 3}}])
    r = cli("run", suite, "--out", tmp_path / "r2")
    assert r.returncode == 2 and "variants[0] (x)" in r.stderr and "field stepz" in r.stderr
    write_suite(suite, variants=[{"name": "x", "from": "nota-wav2lip", "train": {"recipe": "scratch"}}])
    r = cli("run", suite, "--out", tmp_path / "r3")
    assert r.returncode == 2 and "trained variants need the suite's data section" in r.stderr
