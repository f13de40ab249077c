"""The training surface, hardened: a trained model is keyed by the content of the data it
learned from and by its recipe (another data seed trains another model, the same suite
twice trains once, a resume onto other data is refused naming both digests); one writer
per training folder; checkpoints checked before use; recipe numbers and references
checked when the recipe loads."""
import json

import pytest
import torch

from conftest import cli, write_suite

SHORT = {"steps": 2, "batch_size": 2, "eval_every": 2, "eval_batches": 1, "checkpoint_every": 1,
         "sync": None}


def _synthetic(seed):
    return {"identities": 3, "clips_per_identity": 1, "seconds": 1.2, "splits": [1, 1, 1],
            "frame_size": 80, "crop_size": 56, "seed": seed}


def _training(run_dir):
    recs = [json.loads(x) for x in (run_dir / "records.jsonl").read_text().splitlines()]
    return next(r for r in recs if r["variant"] == "small")["provenance"]["training"]


@pytest.mark.slow
def test_another_data_seed_trains_another_model_and_the_same_suite_trains_once(tmp_path):
    cache = {"AVATARBENCH_CACHE": str(tmp_path / "cache")}
    runs = {}
    for seed in (0, 1, 0):
        suite = tmp_path / f"s{seed}.yaml"
        write_suite(suite, name=f"seed{seed}", data={"layout": "lrs", "filelist": "filelists/test.txt",
                                                     "synthetic": _synthetic(seed)},
                    variants=[{"name": "small", "from": "nota-wav2lip", "train": {"recipe": "scratch", **SHORT}}],
                    metrics=["params"])
        out = tmp_path / f"run-{seed}-{len(runs)}"
        r = cli("run", suite, "--out", out, "--no-progress", env=cache)
        assert r.returncode == 0, r.stderr
        runs[len(runs)] = _training(out)
    first, other, again = runs[0], runs[1], runs[2]
    assert first["data"]["sha256"] != other["data"]["sha256"]
    assert first["checkpoint"] != other["checkpoint"]
    assert not other.get("cached")
    assert first["data"]["files"] > 0 and first["data"]["synthetic"] is True
    # the same suite again: the model of the first run, not trained again
    assert again.get("cached") is True and again["checkpoint_sha256"] == first["checkpoint_sha256"]
    trained = list((tmp_path / "cache" / "trained").iterdir())
    assert len(trained) == 2, trained


@pytest.mark.slow
def test_a_resume_onto_other_data_is_refused_naming_both_digests(tmp_path):
    from harness.families.lipsync.synthetic import SyntheticSpec, generate_dataset
    a = generate_dataset(tmp_path / "a", SyntheticSpec(**{**_synthetic(0), "splits": (1, 1, 1)}), videos=False)
    b = generate_dataset(tmp_path / "b", SyntheticSpec(**{**_synthetic(1), "splits": (1, 1, 1)}), videos=False)
    args = ["train", "scratch", "--out", tmp_path / "t", "--no-progress", "--steps", "2", "--batch-size", "2",
            "--set", "eval_every=1", "--set", "checkpoint_every=1", "--set", "eval_batches=1", "--set", "sync=null"]
    env = {"AVATARBENCH_CACHE": str(tmp_path / "cache")}
    r = cli(*args, "--data-root", a, env=env)
    assert r.returncode == 0, r.stderr
    before = sorted((tmp_path / "t" / "checkpoints").iterdir())
    log = (tmp_path / "t" / "log.jsonl").read_text()
    r = cli(*args, "--data-root", b, env=env)
    assert r.returncode == 2, r.stderr
    assert "another training data" in r.stderr and r.stderr.count("sha256") >= 2, r.stderr
    assert "Traceback" not in r.stderr
    assert sorted((tmp_path / "t" / "checkpoints").iterdir()) == before
    assert (tmp_path / "t" / "log.jsonl").read_text() == log
    # the same data resumes
    r = cli(*args, "--data-root", a, env=env)
    assert r.returncode == 0 and "resumed at step 2" in r.stdout, r.stdout + r.stderr


def test_a_second_training_into_the_same_folder_is_refused(tmp_path):
    from harness.families.lipsync.synthetic import SyntheticSpec, generate_dataset
    from harness.run_lock import RunLock
    data = generate_dataset(tmp_path / "a", SyntheticSpec(**{**_synthetic(0), "splits": (1, 1, 1)}), videos=False)
    out = tmp_path / "t"
    with RunLock(out, "training folder", "training"):
        r = cli("train", "scratch", "--out", out, "--no-progress", "--steps", "1", "--batch-size", "2",
                "--data-root", data,
                "--set", "sync=null", env={"AVATARBENCH_CACHE": str(tmp_path / "cache")})
    assert r.returncode == 2 and "training folder" in r.stderr and "in use by another training" in r.stderr, r.stderr
    assert not (out / "log.jsonl").exists()


def _bad_rng(s):
    s["rng"] = torch.zeros(3)


def _wrong_shape(s):
    k = next(k for k, v in s["trainable"].items() if v.ndim == 4)
    s["trainable"][k] = torch.zeros(1, 1, 1, 1)


CORRUPTIONS = [
    ("step beyond the recipe", lambda s: s.update(step=99), "field step"),
    ("negative step", lambda s: s.update(step=-1), "field step"),
    ("fractional step", lambda s: s.update(step=1.5), "field step"),
    ("missing key", lambda s: s.pop("optimiser"), "field optimiser is missing"),
    ("malformed RNG state", _bad_rng, "field rng"),
    ("wrong tensor shape", _wrong_shape, "shape mismatches"),
]


@pytest.mark.slow
def test_a_damaged_training_checkpoint_is_refused_naming_the_field_and_kept(tmp_path, capsys):
    """Through the CLI's entry point (in process, for speed): each damaged checkpoint gets
    exit 2 with the checkpoint and the field named, no traceback, and the file unchanged."""
    from harness.cli import main
    from harness.families.lipsync.synthetic import SyntheticSpec, generate_dataset
    data = generate_dataset(tmp_path / "a", SyntheticSpec(**{**_synthetic(0), "splits": (1, 1, 1)}), videos=False)
    args = ["train", "scratch", "--data-root", str(data), "--no-progress", "--steps", "2", "--batch-size", "2",
            "--set", "eval_every=2", "--set", "checkpoint_every=2", "--set", "eval_batches=1", "--set", "sync=null"]
    import shutil
    trained = tmp_path / "trained"
    assert main(args + ["--out", str(trained)]) == 0
    for i, (what, damage, words) in enumerate(CORRUPTIONS):
        out = tmp_path / f"t{i}"
        shutil.copytree(trained, out)
        (out / ".lock").unlink(missing_ok=True)
        ck = sorted((out / "checkpoints").glob("step-*.pt"))[-1]
        state = torch.load(ck, weights_only=True)
        damage(state)
        torch.save(state, ck)
        before = ck.read_bytes()
        capsys.readouterr()
        assert main(args + ["--out", str(out)]) == 2, what
        err = capsys.readouterr().err
        assert str(ck) in err and words in err and "Traceback" not in err, (what, err)
        assert ck.read_bytes() == before, what


def test_recipe_references_are_resolved_not_guessed(tmp_path):
    from harness.errors import BadInput
    from harness.train.recipe import load_recipe
    with pytest.raises(BadInput, match="field best"):
        load_recipe("scratch", {"best": "l1_typo"})
    with pytest.raises(BadInput, match="kd_blocks: an empty list"):
        load_recipe("distill", {"kd_blocks": []})
    with pytest.raises(BadInput, match="named more than once"):
        load_recipe("distill", {"kd_blocks": ["face_encoder_blocks.0", "face_encoder_blocks.0"]})


@pytest.mark.parametrize("override, words", [
    ({"optimiser.lr": float("inf")}, "field optimiser.lr: Input should be a finite number"),
    ({"optimiser.weight_decay": float("inf")}, "field optimiser.weight_decay"),
    ({"optimiser.betas": [0.9, 1.0]}, "each beta must be in [0, 1)"),
    ({"losses": {"l1": float("nan")}}, "field losses.l1"),
    ({"disc": {"betas": [1.5, 0.9]}}, "field disc: betas"),
])
def test_recipe_numbers_are_finite_and_in_range_when_the_recipe_loads(override, words):
    from harness.errors import BadInput
    from harness.train.recipe import load_recipe
    with pytest.raises(BadInput) as exc:
        load_recipe("generator", override)
    assert words in str(exc.value) and "generator.yaml" in str(exc.value)


def test_training_on_the_split_the_suite_scores_is_refused(tmp_path):
    suite = tmp_path / "s.yaml"
    for field in ("split", "val_split"):
        write_suite(suite, data={"layout": "lrs", "filelist": "filelists/test.txt", "synthetic": _synthetic(0)},
                    variants=[{"name": "small", "from": "nota-wav2lip",
                               "train": {"recipe": "scratch", **SHORT, field: "test"}}], metrics=["params"])
        r = cli("run", suite, "--out", tmp_path / f"r-{field}", env={"AVATARBENCH_CACHE": str(tmp_path / "c")})
        assert r.returncode == 2 and f"field {field} is 'test', the split this suite scores" in r.stderr, r.stderr
        assert not (tmp_path / "c" / "trained").exists()
