"""A killed run resumes without recomputing recorded cells; records are never torn or doubled."""
import json
import signal
import subprocess
import sys
import time

from conftest import ROOT, records, write_suite


def _start(suite, out, plugin):
    import os
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "harness.cli", "run", str(suite), "--out", str(out),
                             "--plugin", str(plugin), "--no-progress"],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _cells(recs):
    return [(r["variant"], r["metric"]) for r in recs]


def test_killed_run_resumes_without_recomputing(tiny_plugin, tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["tiny-generator", "tiny-generator-2", "nota-wav2lip"],
                        metrics=["params", "slow_params", "size_mb"])
    out = tmp_path / "run"
    proc = _start(suite, out, tiny_plugin)
    deadline = time.time() + 120
    while time.time() < deadline:
        f = out / "records.jsonl"
        if f.exists() and len(f.read_text().splitlines()) >= 3:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    before = (out / "records.jsonl").read_bytes()
    first = [json.loads(line) for line in before.decode().splitlines()]  # every line is whole
    assert 3 <= len(first) < 9

    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--out", str(out),
                        "--plugin", str(tiny_plugin), "--no-progress"],
                       cwd=ROOT, env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"{len(first)} cells already recorded" in r.stderr
    after = (out / "records.jsonl").read_bytes()
    assert after.startswith(before)                      # recorded cells untouched
    recs = records(out)
    cells = _cells(recs)
    assert len(cells) == len(set(cells)) == 9            # nothing doubled, nothing missing
    assert all(r["status"] == "ok" for r in recs)
    meta = json.loads((out / "run.json").read_text())
    assert len(meta["resumed"]) == 1


def test_rerun_of_a_complete_run_computes_nothing(tiny_plugin, tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["tiny-generator"], metrics=["params", "size_mb"])
    out = tmp_path / "run"
    for _ in range(2):
        p = _start(suite, out, tiny_plugin)
        stdout, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    assert "0 cells computed, 2 already recorded" in stdout
    assert len(records(out)) == 2


def test_torn_last_line_is_cut_and_the_cell_recomputed(tiny_plugin, tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["tiny-generator"], metrics=["params", "size_mb"])
    out = tmp_path / "run"
    p = _start(suite, out, tiny_plugin)
    p.communicate(timeout=300)
    lines = (out / "records.jsonl").read_text().splitlines(keepends=True)
    (out / "records.jsonl").write_text(lines[0] + lines[1][: len(lines[1]) // 2])  # died mid-write
    p = _start(suite, out, tiny_plugin)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0 and "torn last record" in err
    recs = records(out)
    assert sorted(_cells(recs)) == [("tiny-generator", "params"), ("tiny-generator", "size_mb")]


def test_changed_suite_is_refused_then_fresh_keeps_old(tiny_plugin, tmp_path):
    suite = write_suite(tmp_path / "s.yaml", variants=["tiny-generator"], metrics=["params"])
    out = tmp_path / "run"
    _start(suite, out, tiny_plugin).communicate(timeout=300)
    write_suite(suite, variants=["tiny-generator"], metrics=["params", "size_mb"])
    p = _start(suite, out, tiny_plugin)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 2 and "--fresh" in err
    assert len(records(out)) == 1
    import os
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(suite), "--out", str(out),
                        "--plugin", str(tiny_plugin), "--fresh", "--no-progress"],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    kept = [p for p in tmp_path.iterdir() if p.name.startswith("run.prev-")]
    assert len(kept) == 1 and len(records(kept[0])) == 1
    assert len(records(out)) == 2
