"""Bad suites and names: a clear message naming what and where, exit code 2."""
import pytest

from conftest import cli, records, write_suite
from harness import BadInput, get_variant, register_variant
from harness.suite import load_suite


def test_malformed_yaml_names_file_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nfamily: lipsync\nvariants: [wav2lip\nmetrics: [params]\n")
    r = cli("run", bad, "--out", tmp_path / "run")
    assert r.returncode == 2
    assert "bad.yaml" in r.stderr and "line" in r.stderr and "malformed YAML" in r.stderr
    assert not (tmp_path / "run").exists()


def test_invalid_field_is_named(tmp_path):
    s = write_suite(tmp_path / "s.yaml", precisions="bf16", variantz=["x"])
    with pytest.raises(BadInput) as e:
        load_suite(str(s))
    msg = str(e.value)
    assert "s.yaml" in msg and "field precisions" in msg and "field variantz" in msg


def test_missing_required_field(tmp_path):
    s = tmp_path / "s.yaml"
    s.write_text("name: x\nvariants: [wav2lip]\nmetrics: [params]\n")
    with pytest.raises(BadInput, match="field family: Field required"):
        load_suite(str(s))


def test_unknown_variant_exits_2_with_suggestion(tmp_path):
    s = write_suite(tmp_path / "s.yaml", variants=["nota-wav2lip", "wav2lipp"])
    r = cli("run", s, "--out", tmp_path / "run")
    assert r.returncode == 2
    assert "variants[1] (wav2lipp)" in r.stderr and "did you mean 'wav2lip'" in r.stderr


def test_unknown_metric_exits_2_with_suggestion(tmp_path):
    s = write_suite(tmp_path / "s.yaml", metrics=["params", "latncy_ms"])
    r = cli("run", s, "--out", tmp_path / "run")
    assert r.returncode == 2
    assert "metrics[1]" in r.stderr and "did you mean 'latency_ms'" in r.stderr


def test_unknown_metric_option(tmp_path):
    s = write_suite(tmp_path / "s.yaml", metrics=[{"name": "latency_ms", "options": {"thread": 1}}])
    r = cli("run", s, "--out", tmp_path / "run")
    assert r.returncode == 2 and "has no option 'thread'" in r.stderr


def test_repeated_metric_id_needs_an_id(tmp_path):
    s = write_suite(tmp_path / "s.yaml", metrics=["latency_ms", {"name": "latency_ms", "options": {"threads": 1}}])
    with pytest.raises(BadInput, match="repeated: latency_ms"):
        load_suite(str(s))


def test_unknown_suite_name():
    r = cli("run", "efficency")
    assert r.returncode == 2 and "did you mean 'efficiency'" in r.stderr


def test_unknown_precision(tmp_path):
    s = write_suite(tmp_path / "s.yaml", precisions=["fp32", "int4"])
    r = cli("run", s, "--out", tmp_path / "run")
    assert r.returncode == 2 and "int4" in r.stderr


def test_duplicate_registration_is_an_error():
    with pytest.raises(BadInput, match="duplicate variant name 'wav2lip'"):
        register_variant("wav2lip", family="lipsync", role="student")(lambda: None)
    assert get_variant("wav2lip").role == "teacher"


def test_bad_weights_in_suite_records_failure_and_keeps_the_rest(tmp_path):
    ckpt = tmp_path / "w.pth"
    import torch
    torch.save({"nothing": torch.zeros(1)}, ckpt)
    s = write_suite(tmp_path / "s.yaml", variants=["wav2lip-w4", {"name": "nota-wav2lip", "weights": str(ckpt)}])
    r = cli("run", s, "--out", tmp_path / "run", "--no-progress")
    assert r.returncode == 2 and "missing keys" in r.stderr
    recs = records(tmp_path / "run")
    ok = {(x["variant"], x["metric"]) for x in recs if x["status"] == "ok"}
    assert ("wav2lip-w4", "params") in ok and ("wav2lip-w4", "size_mb") in ok
    failed = [x for x in recs if x["status"] == "failed"]
    assert {x["variant"] for x in failed} == {"nota-wav2lip"} and all(x["bad_input"] for x in failed)
    assert (tmp_path / "run" / "table.md").exists()


def test_skipped_metric_is_recorded_with_reason_not_a_number(tmp_path):
    plugin = tmp_path / "skip.py"
    plugin.write_text("from harness import Result, register_metric\n"
                      "@register_metric('needs_weights', direction='lower', unit='')\n"
                      "def needs_weights(cell):\n"
                      "    return Result(None, reason='foo.pth not found in $AVATARBENCH_WEIGHTS')\n")
    s = write_suite(tmp_path / "s.yaml", metrics=["params", "needs_weights"])
    r = cli("run", s, "--out", tmp_path / "run", "--plugin", plugin, "--no-progress")
    assert r.returncode == 0, r.stderr
    rec = {x["metric"]: x for x in records(tmp_path / "run")}["needs_weights"]
    assert rec["status"] == "skipped" and rec["value"] is None
    assert rec["reason"] == "foo.pth not found in $AVATARBENCH_WEIGHTS"
    assert "skipped [1]" in r.stdout and "[1] foo.pth not found" in r.stdout
