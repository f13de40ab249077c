"""Hostile or careless input, one test (or a few) per class of failure: each gets exit 2
and a message that names what and where, and nothing recorded is lost or mixed."""
import io
import json
import os
import pickle
import signal
import struct
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
import yaml

from conftest import ROOT, cli, make_lrs_tree, records, write_suite

SYNC_FILE = "syncnet_v2.model"


# --------------------------------------------------------------- 1. the legacy-pickle loader

def _legacy_file(body: bytes) -> bytes:
    """PyTorch's legacy (non-zip) format around a hand-written pickle ``body``."""
    from torch.serialization import MAGIC_NUMBER, PROTOCOL_VERSION
    info = {"protocol_version": PROTOCOL_VERSION, "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return (pickle.dumps(MAGIC_NUMBER, 2) + pickle.dumps(PROTOCOL_VERSION, 2) + pickle.dumps(info, 2)
            + body + pickle.dumps([], 2))


def _s(text: str) -> bytes:
    data = text.encode()
    return b"X" + struct.pack("<I", len(data)) + data   # BINUNICODE


def _patch_file_attack(target) -> bytes:
    """Only allow-listed names: BUILD sets attributes on the stand-in class for
    torch.nn.modules.conv.Conv2d so that torch's legacy loader, comparing a pickled
    module's source, writes a '.patch' file named by the pickle."""
    glob = b"ctorch.nn.modules.conv\nConv2d\n"
    attrs = {"dump_patches": True, "__module__": "torch.nn.modules.conv", "__qualname__": "Conv2d",
             "__name__": str(target)}
    build = glob + b"N}" + b"".join(_s(k) + (b"\x88" if v is True else _s(v)) + b"s" for k, v in attrs.items())
    build += b"\x86b0"                                    # TUPLE2, BUILD, POP
    pid = b"(" + _s("module") + glob + _s("conv.py") + _s("class Conv2d: pass\n") + b"tQ"
    return b"\x80\x02" + build + pid + b"."


def test_a_legacy_pickle_cannot_set_attributes_or_write_files(tmp_path, monkeypatch):
    from harness.errors import BadInput
    from harness.metrics.syncnet_model import _stand_ins, convert_syncnet_v2
    monkeypatch.setenv("AVATARBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "written-by-the-pickle"
    path = tmp_path / SYNC_FILE
    path.write_bytes(_legacy_file(_patch_file_attack(target)))
    with pytest.raises(BadInput) as err:
        convert_syncnet_v2(path)
    assert str(path) in str(err.value)
    assert not list(tmp_path.glob("written-by-the-pickle*"))
    conv = next(c for c, n in _stand_ins() if n == "torch.nn.modules.conv.Conv2d")
    assert conv.dump_patches is False and conv.__name__ == "Conv2d"


def test_a_hashless_canonical_file_is_checked_against_its_known_sha256(tmp_path):
    from harness.canonical_weights import CATALOG
    for name in (SYNC_FILE, "20180402-114759-vggface2.pt"):
        assert CATALOG[name].sha256 is None or len(CATALOG[name].sha256) == 64
    folder = tmp_path / "w"
    folder.mkdir()
    (folder / SYNC_FILE).write_bytes(b"not the published file")
    r = cli("weights", "verify", SYNC_FILE, env={"AVATARBENCH_WEIGHTS": str(folder)})
    if CATALOG[SYNC_FILE].sha256:
        assert r.returncode == 2 and "sha256" in r.stderr and SYNC_FILE in r.stderr
    else:   # no published digest known: the file is marked unverifiable, never "verified"
        assert "verified" not in r.stdout.replace("unverified", "")


# --------------------------------------------------------------- 2. one run per folder

def _start(suite, out, plugin, extra=()):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--out", str(out),
                             "--plugin", str(plugin), "--no-progress", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(path, lines=1, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if path.exists() and len(path.read_text().splitlines()) >= lines:
            return
        time.sleep(0.05)
    raise AssertionError(f"{path} did not get {lines} lines")


def test_a_second_run_into_the_same_folder_is_refused_and_a_dead_holder_is_taken_over(tiny_plugin, tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["tiny-generator", "tiny-generator-2"],
                        metrics=["params", {"name": "slow_params", "options": {"sleep": 8}}])
    out = tmp_path / "run"
    first = _start(suite, out, tiny_plugin)
    try:
        _wait_for(out / "records.jsonl")
        second = cli("run", suite, "--out", out, "--plugin", tiny_plugin, "--no-progress")
        assert second.returncode == 2, second.stderr
        assert "in use" in second.stderr and f"PID {first.pid}" in second.stderr
    finally:
        first.send_signal(signal.SIGKILL)
        first.wait()
    recs = records(out)
    assert len(recs) == len({(r["variant"], r["metric"]) for r in recs})   # nothing doubled
    third = cli("run", suite, "--out", out, "--plugin", tiny_plugin, "--no-progress")
    assert third.returncode == 0, third.stderr
    assert len(records(out)) == 4


def _record(variant, metric, status, value, suite_hash):
    return {"variant": variant, "metric": metric, "status": status, "value": value, "n": 1,
            "suite_hash": suite_hash, "unit": "count", "direction": "lower", "precision": "fp32",
            "role": "student", "lineage": [variant], "family": "lipsync", "provenance": {},
            **({"error": "boom", "bad_input": False} if status == "failed" else {})}


def test_the_latest_record_of_a_cell_counts_for_resume_and_table(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["nota-wav2lip"], metrics=["params"])
    out = tmp_path / "run"
    assert cli("run", suite, "--out", out, "--no-progress").returncode == 0
    ok = records(out)[0]
    with open(out / "records.jsonl", "a") as f:
        f.write(json.dumps({**ok, "status": "failed", "value": None, "error": "later failure",
                            "bad_input": False}) + "\n")
    r = cli("run", suite, "--out", out, "--no-progress")
    assert r.returncode == 0 and "1 cells computed" in r.stdout, r.stdout + r.stderr
    assert records(out)[-1]["status"] == "ok" and "later failure" not in (out / "table.md").read_text()


# --------------------------------------------------------------- 3. records of another suite

def test_records_of_a_changed_suite_do_not_count(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["nota-wav2lip"], metrics=["params", "macs"])
    out = tmp_path / "run"
    assert cli("run", suite, "--out", out, "--no-progress").returncode == 0
    old_hash = records(out)[0]["suite_hash"]
    (out / "run.json").unlink()
    write_suite(suite, variants=["nota-wav2lip"], metrics=["params", {"name": "macs", "options": {"batch_size": 2}}])
    r = cli("run", suite, "--out", out, "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "already recorded" not in r.stderr
    latest = {x["metric"]: x for x in records(out)}
    assert all(x["suite_hash"] != old_hash for x in latest.values())
    assert latest["macs"]["value"] == 2 * records(out)[1]["value"]


# --------------------------------------------------------------- 4. YAML that attacks

LAUGHS = "\n".join(["a: &a [x, x, x, x, x, x, x, x, x, x]"]
                   + [f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, "
                      f"*{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}, *{chr(97 + i)}]"
                      for i in range(8)])


@pytest.mark.parametrize("text,words", [
    ("name: t\nfamily: lipsync\nvariants: [nota-wav2lip]\nmetrics: [params]\ndata:\n  "
     + LAUGHS.replace("\n", "\n  ") + "\n", ["expands"]),
    ("name: t\nfamily: lipsync\nvariants: [nota-wav2lip]\nmetrics:\n  - {name: macs, options: &o {batch_size: *o}}\n",
     ["recursive"]),
    ("name: t\nfamily: lipsync\nvariants: [nota-wav2lip]\nmetrics: [params]\ndata: " + "[" * 5000 + "]" * 5000 + "\n",
     ["nested"]),
    ("name: t\nname: u\nfamily: lipsync\nvariants: [nota-wav2lip]\nmetrics: [params]\n", ["duplicate key 'name'", "line 2"]),
    ("name: t\nfamily: lipsync\nvariants: [nota-wav2lip]\nmetrics: [params]\nseed: 99999999999999999999999\n", ["seed"]),
    ("name: t\nfamily: lipsync\nvariants: [nota-wav2lip]\nmetrics: [params]\nprecisions: []\n", ["precisions"]),
])
def test_hostile_yaml_gets_exit_2(tmp_path, text, words):
    path = tmp_path / "s.yaml"
    path.write_text(text)
    r = cli("run", path, "--out", tmp_path / "run", "--no-progress", timeout=120)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "Traceback" not in r.stderr and str(path) in r.stderr
    for w in words:
        assert w in r.stderr, r.stderr


def test_a_huge_or_undecodable_suite_gets_exit_2(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: t\nfamily: lipsync\nvariants: [nota-wav2lip]\nmetrics: [params]\n"
                   "description: " + "x" * 3_000_000 + "\n")
    r = cli("run", big, "--out", tmp_path / "r1", "--no-progress")
    assert r.returncode == 2 and "bytes" in r.stderr and not (tmp_path / "r1").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"name: t\nfamily: lipsync\nvariants: [nota-wav2lip]\nmetrics: [params]\ndescription: \xff\xfe\n")
    r = cli("run", bad, "--out", tmp_path / "r2", "--no-progress")
    assert r.returncode == 2 and "UTF-8" in r.stderr and "line 5" in r.stderr


# --------------------------------------------------------------- 5. the memory probe

def test_the_memory_probe_ignores_a_harness_package_in_the_working_folder(tmp_path):
    fake = tmp_path / "cwd" / "harness"
    (fake / "profiling").mkdir(parents=True)
    marker = tmp_path / "fake-harness-ran"
    (fake / "__init__.py").write_text(f"open({str(marker)!r}, 'w').write('x')\n")
    (fake / "profiling" / "__init__.py").write_text("")
    (fake / "profiling" / "memory.py").write_text("print('{\"peak_mb\": 0.001}')\n")
    suite = write_suite(tmp_path / "s.yaml", variants=["nota-wav2lip"], metrics=["peak_mem_mb"])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    # the installed command: sys.path[0] is the script's folder, not the working folder
    r = subprocess.run([sys.executable, "-P", "-m", "harness.cli", "run", str(suite), "--out",
                        str(tmp_path / "run"), "--no-progress"], cwd=tmp_path / "cwd", env=env,
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr
    assert not marker.exists()
    assert records(tmp_path / "run")[0]["value"] > 1.0


# --------------------------------------------------------------- 6. damaged state

def test_damaged_run_state_is_not_sticky(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["nota-wav2lip"], metrics=["params", "size_mb"])
    out = tmp_path / "run"
    assert cli("run", suite, "--out", out, "--no-progress").returncode == 0
    with open(out / "records.jsonl", "a") as f:
        f.write('{"hello": "world"}\n[1, 2]\n')
    r = cli("run", suite, "--out", out, "--no-progress")
    assert r.returncode == 0 and "line 3" in r.stderr and "line 4" in r.stderr, r.stderr
    for damaged in ("", "{not json"):
        (out / "run.json").write_text(damaged)
        r = cli("run", suite, "--out", out, "--no-progress")
        assert r.returncode == 2 and "run.json" in r.stderr and "--fresh" in r.stderr, r.stderr
        r = cli("table", out)
        assert r.returncode == 0, r.stderr
    r = cli("run", suite, "--out", out, "--no-progress", "--fresh")
    assert r.returncode == 0, r.stderr
    assert json.loads((out / "run.json").read_text())["suite"]["name"] == "tiny"


def test_state_files_are_written_through_unique_temporary_files(tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["nota-wav2lip"], metrics=["params"])
    out = tmp_path / "run"
    out.mkdir()
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    (out / "run.json.tmp").symlink_to(victim)
    assert cli("run", suite, "--out", out, "--no-progress").returncode == 0
    assert victim.read_text() == "keep me"
    assert json.loads((out / "run.json").read_text())["suite"]["name"] == "tiny"


def test_a_truncated_quantize_cache_entry_is_a_miss(tmp_path, monkeypatch):
    from harness.derive import get_variant, materialize
    monkeypatch.setenv("AVATARBENCH_CACHE", str(tmp_path / "cache"))
    v = get_variant("nota-wav2lip@int8")
    torch.manual_seed(0)
    first = materialize(v)
    folder = next((tmp_path / "cache" / "quantize").iterdir())
    pt = folder / "quantized.pt"
    pt.write_bytes(pt.read_bytes()[:100])
    torch.manual_seed(0)
    again = materialize(v)
    x = v.inputs(1)
    assert torch.equal(again.model(*x), first.model(*x))
    (folder / "meta.json").write_text("{")
    torch.manual_seed(0)
    assert torch.equal(materialize(v).model(*x), first.model(*x))


# --------------------------------------------------------------- 7. wrong-shaped output

BAD_GENERATORS = '''
from torch import nn
from harness import register_variant

class OneChannel(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(6, 1, 1)
    def forward(self, audio_sequences, face_sequences):
        return self.c(face_sequences).sigmoid()

class Small(nn.Module):
    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(6, 3, 2, stride=2)
    def forward(self, audio_sequences, face_sequences):
        return self.c(face_sequences).sigmoid()

register_variant("one-channel", family="lipsync", role="student")(OneChannel)
register_variant("half-size", family="lipsync", role="student")(Small)
'''


def test_wrong_shaped_generator_output_is_not_scored(tmp_path):
    root = make_lrs_tree(tmp_path / "data", clips=("spk1/00001",), frames=8)
    plugin = tmp_path / "bad_generators.py"
    plugin.write_text(BAD_GENERATORS)
    suite = write_suite(tmp_path / "s.yaml", variants=["one-channel", "half-size"], metrics=["psnr"],
                        data={"layout": "lrs"})
    r = cli("run", suite, "--out", tmp_path / "run", "--plugin", plugin, "--data-root", root, "--no-progress")
    assert r.returncode == 2
    recs = {x["variant"]: x for x in records(tmp_path / "run")}
    for name in ("one-channel", "half-size"):
        assert recs[name]["status"] == "failed" and recs[name]["value"] is None
        assert name in recs[name]["error"] and "(3, 96, 96)" in recs[name]["error"]


# --------------------------------------------------------------- 8. media and options

def test_a_16_bit_png_keeps_its_levels(tmp_path):
    from PIL import Image
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        Image.fromarray(ramp).save(tmp_path / d / "0.png")
    r = cli("score", "psnr", "--fake", tmp_path / "a", "--real", tmp_path / "b", "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["value"] == "inf"
    from harness.score import _read_images
    frames = _read_images(tmp_path / "a")
    assert frames.dtype == np.uint8 and len(np.unique(frames)) > 200


def test_a_wav_with_rate_zero_gets_exit_2(tmp_path):
    from scipy.io import wavfile
    path = tmp_path / "a.wav"
    wavfile.write(path, 16000, np.zeros(16000, np.int16))
    data = bytearray(path.read_bytes())
    data[24:32] = struct.pack("<II", 0, 0)     # sample rate and bytes per second: 0
    path.write_bytes(bytes(data))
    from harness.data.audio import load_audio
    from harness.errors import BadInput
    with pytest.raises(BadInput, match="sample rate"):
        load_audio(path)


@pytest.mark.parametrize("metric,options,words", [
    ("latency_ms", {"threads": "lots"}, ["threads", "'lots'"]),
    ("latency_ms", {"reps": 0}, ["reps", "at least 1"]),
    ("lse_d", {"vshift": 100000000}, ["vshift", "at most"]),
    ("fid", {"device": "cuda:7"}, ["device", "cuda:7"]),
    ("macs", {"backend": "magic"}, ["backend", "aten"]),
    ("macs", {"batch_size": "two"}, ["batch_size", "'two'"]),
])
def test_bad_metric_options_are_refused_when_the_suite_loads(tmp_path, metric, options, words):
    suite = write_suite(tmp_path / "s.yaml", metrics=["params", {"name": metric, "options": options}])
    r = cli("run", suite, "--out", tmp_path / "run", "--no-progress")
    assert r.returncode == 2, r.stderr
    assert "metrics[1]" in r.stderr and not (tmp_path / "run").exists()
    for w in words:
        assert w in r.stderr, r.stderr


# --------------------------------------------------------------- 9. names that become paths

@pytest.mark.parametrize("field,value", [("name", "ABSOLUTE"), ("name", "../up"),
                                          ("report", {"plots": [{"x": "params", "y": "size_mb", "name": "../p"}]})])
def test_names_that_become_paths_are_restricted(tmp_path, field, value):
    outside = tmp_path / "outside"
    suite = write_suite(tmp_path / "s.yaml", **{field: str(outside) if value == "ABSOLUTE" else value})
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--no-progress"],
                       cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "s.yaml" in r.stderr, r.stderr
    assert not outside.exists() and not (tmp_path / "up").exists()


def test_variant_names_that_become_paths_are_restricted(tmp_path):
    plugin = tmp_path / "p.py"
    plugin.write_text("from torch import nn\nfrom harness import register_variant\n"
                      "register_variant('../../evil', family='lipsync', role='student')(lambda: nn.Conv2d(6, 3, 1))\n")
    r = cli("list", "variants", "--plugin", plugin)
    assert r.returncode == 2 and "'../../evil'" in r.stderr


# --------------------------------------------------------------- 10. skipped is not forever

def test_cells_skipped_for_missing_weights_are_retried_once_the_file_is_there(tmp_path):
    root = make_lrs_tree(tmp_path / "data", clips=("spk1/00001",), frames=8)
    weights = tmp_path / "weights"
    weights.mkdir()
    env = {"AVATARBENCH_WEIGHTS": str(weights), "TORCH_HOME": str(tmp_path / "torch"),
           "AVATARBENCH_CACHE": str(tmp_path / "cache")}
    suite = write_suite(tmp_path / "s.yaml", variants=["ground-truth"], metrics=["lpips"],
                        data={"layout": "lrs"})
    out = tmp_path / "run"
    r = cli("run", suite, "--out", out, "--data-root", root, "--no-progress", env=env)
    assert r.returncode == 0 and records(out)[0]["status"] == "skipped"
    from torchvision.models import alexnet
    torch.manual_seed(0)
    torch.save(alexnet().state_dict(), weights / "alexnet-owt-7be5be79.pth")
    r = cli("run", suite, "--out", out, "--data-root", root, "--no-progress", "--allow-unverified-weights",
            env=env)
    assert r.returncode == 0, r.stderr
    assert records(out)[-1]["status"] == "ok"


# --------------------------------------------------------------- profile: same model as a run

def test_profile_of_a_quantized_variant_is_reproducible_and_matches_a_suite_run(tmp_path):
    env = {"AVATARBENCH_CACHE": str(tmp_path / "cache")}
    hashes = []
    for _ in range(2):
        r = cli("profile", "nota-wav2lip@int8", "--json", "--no-latency", env=env)
        assert r.returncode == 0, r.stderr
        hashes.append(json.loads(r.stdout)["quantize"]["recipe_hash"])
    assert hashes[0] == hashes[1]
    assert len(list((tmp_path / "cache" / "quantize").iterdir())) == 1
    suite = write_suite(tmp_path / "s.yaml", variants=["nota-wav2lip@int8"], metrics=["size_mb"])
    assert cli("run", suite, "--out", tmp_path / "run", "--no-progress", env=env).returncode == 0
    made = records(tmp_path / "run")[0]["provenance"]["quantize"]
    assert made["recipe_hash"] == hashes[0]


def test_a_damaged_generated_video_is_made_again(tmp_path):
    root = make_lrs_tree(tmp_path / "data", clips=("spk1/00001",), frames=8)
    env = {"AVATARBENCH_CACHE": str(tmp_path / "cache")}
    suite = write_suite(tmp_path / "s.yaml", variants=["ground-truth"], metrics=["psnr"], data={"layout": "lrs"})
    r = cli("run", suite, "--out", tmp_path / "r1", "--data-root", root, "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    video = next((tmp_path / "cache" / "generated").rglob("*.mp4"))
    video.write_bytes(video.read_bytes()[:200])
    r = cli("run", suite, "--out", tmp_path / "r2", "--data-root", root, "--no-progress", env=env)
    assert r.returncode == 0, r.stderr
    assert records(tmp_path / "r2")[0]["value"] == records(tmp_path / "r1")[0]["value"]
