"""Device profiles, the roofline estimator, latency_ms@DEVICE and the remote runner."""
import json
import sys

import numpy as np
import pytest

from harness.devices import Roofline, devices
from harness.errors import BadInput
from harness.profiling.estimate import estimate_layers, executed_macs, total_ms
from harness.profiling.macs import outres_layers, ptflops_macs
from harness.registry import load_builtins
from harness.derive import get_variant

from conftest import cli, records, write_suite

JETSONS = ["jetson-nano", "jetson-tx2", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-orin-nano"]


def test_shipped_profiles_have_sources_and_list_shows_them():
    load_builtins()
    for name in JETSONS + ["raspberry-pi-5", "desktop-rtx3090"]:
        roof = devices.get(name).roofline
        assert roof.peak_gops["fp32"] > 0 and roof.bandwidth_gbs > 0
        assert all(roof.sources.get(k) for k in ("peak_gops", "bandwidth_gbs", "efficiency",
                                                  "launch_overhead_us"))
    r = cli("list", "devices")
    assert r.returncode == 0 and all(n in r.stdout for n in JETSONS + ["host-cpu", "raspberry-pi-5"])


def test_executed_macs_equal_ptflops_aten():
    load_builtins()
    for name in ("nota-wav2lip", "wav2lip-w4"):
        v = get_variant(name)
        model, x = v.build_float()[0], v.inputs(1)
        rows = outres_layers(model, x)
        # ptflops' aten count adds one per output element for the bias
        bias = sum(int(np.prod(r.out_shape)) for r in rows)
        assert sum(executed_macs(r) for r in rows) + bias == ptflops_macs(model, x)[0]


def test_roofline_arithmetic_and_precision_fallback():
    from harness.profiling.macs import LayerCount
    roof = Roofline({"fp32": 100.0, "fp16": 400.0}, 10.0, 0.5, 0.5, 2.0, {})
    row = LayerCount("c", "Conv2d", macs=10_000_000, params=1000, in_shape=(1, 4, 10, 10),
                     out_shape=(1, 8, 10, 10))
    fp32, = estimate_layers([row], roof, {}, "fp32")
    compute = 2 * 1e7 / (100e9 * 0.5) * 1e6          # 400 us
    memory = (1000 + 400 + 800) * 4 / (10e9 * 0.5) * 1e6
    assert fp32.bound == "compute" and fp32.time_us == pytest.approx(compute + 2.0)
    assert memory < compute
    int8, = estimate_layers([row], roof, {"c": "int8"}, "fp32")
    assert int8.runs_at == "fp16" and int8.time_us == pytest.approx(2 * 1e7 / (400e9 * 0.5) * 1e6 + 2.0)
    assert total_ms([fp32, int8]) == pytest.approx((fp32.time_us + int8.time_us) / 1000)


def test_host_fit_recovers_known_factors():
    from harness.profiling.host_roofline import fit, predict_us
    rng = np.random.default_rng(0)
    truth = {"compute_eff": 0.6, "memory_eff": 0.3, "launch_overhead_us": 20.0,
             "small_layer_exponent": 0.4, "full_eff_flops": 2e8}
    flops = 10 ** rng.uniform(5, 9.5, 60)              # small (slow) to big (full efficiency) layers
    nbytes = 10 ** rng.uniform(3, 7.5, 60)              # some memory-bound
    t = predict_us(truth, flops, nbytes, 200, 50)
    got = fit([{"flops": f, "bytes": b, "measured_us": x} for f, b, x in zip(flops, nbytes, t)], 200, 50)
    assert got["compute_eff"] == pytest.approx(0.6, rel=0.05) and got["memory_eff"] == pytest.approx(0.3, rel=0.05)
    assert got["launch_overhead_us"] == pytest.approx(20, rel=0.1)
    assert got["small_layer_exponent"] == pytest.approx(0.4, rel=0.1)
    assert got["full_eff_flops"] == pytest.approx(2e8, rel=0.15) and got["rms_log_error"] < 0.02
    # the estimator applies the same law: a layer 100x below full_eff_flops runs at 0.6 x 0.01 ** 0.4
    roof = Roofline({"fp32": 200.0}, 50.0, 0.6, 0.3, 20.0, {}, 0.0, 0.4, 2e8)
    assert roof.compute_eff_at(2e6) == pytest.approx(0.6 * 0.01 ** 0.4)
    assert roof.compute_eff_at(4e8) == 0.6


def test_estimated_latency_in_a_suite_and_profile(tmp_path):
    s = tmp_path / "s.yaml"
    write_suite(s, variants=["wav2lip", "nota-wav2lip", "nota-wav2lip@int8"],
                metrics=["params", "latency_ms@jetson-xavier-nx", "latency_ms@jetson-nano"],
                report={"baseline": "wav2lip"})
    r = cli("run", s, "--out", tmp_path / "run", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "Latency, Jetson Xavier NX (est. ms) ↓" in r.stdout   # readable header, estimate said
    recs = {(x["variant"], x["metric"]): x for x in records(tmp_path / "run")}
    nx = {v: recs[(v, "latency_ms@jetson-xavier-nx")] for v in ("wav2lip", "nota-wav2lip", "nota-wav2lip@int8")}
    assert all(x["provenance"]["estimated"] for x in nx.values())
    assert nx["wav2lip"]["value"] > nx["nota-wav2lip"]["value"] > nx["nota-wav2lip@int8"]["value"] > 0
    # the Nano has no INT8 rate: INT8 layers are estimated at its fp16 peak
    assert recs[("nota-wav2lip@int8", "latency_ms@jetson-nano")]["provenance"]["settings"]["precisions"] == ["fp16"]
    # a calibrated profile's column is still an estimate, and says how its numbers were set
    assert "Latency, Jetson Nano (est. ms) ↓" in r.stdout
    nano = recs[("wav2lip", "latency_ms@jetson-nano")]["provenance"]
    assert nano["estimated"] and nano["settings"]["basis"].startswith("calibrated")
    assert nano["settings"]["fixed_overhead_us"] > 0
    assert nx["wav2lip"]["provenance"]["settings"]["basis"] == "assumed (not fitted)"

    r = cli("profile", "nota-wav2lip", "--device", "jetson-orin-nano", "--precision", "fp16",
            "--explain", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["latency_ms_estimated"]["estimated"] is True and out["latency_ms_estimated"]["value"] > 0
    assert len(out["explain"]["layers"]) == 23 and "compute-bound" in out["explain"]["text"]


def test_bad_device_profile_and_unknown_device_exit_2(tmp_path):
    f = tmp_path / "devs.yaml"
    f.write_text("my-board:\n  description: a board\n  peak_gops: {fp32: 100}\n"
                 "  efficiency: {compute: 0.5, memory: 0.5}\n  launch_overhead_us: 5\n"
                 "  sources: {peak_gops: a, efficiency: b, launch_overhead_us: c}\n")
    r = cli("list", "devices", "--devices", f)
    assert r.returncode == 2 and "my-board" in r.stderr and "bandwidth_gbs" in r.stderr and str(f) in r.stderr
    f.write_text(f.read_text() + "  bandwidth_gbs: 10\n")
    r = cli("list", "devices", "--devices", f)
    assert r.returncode == 2 and "sources lacks bandwidth_gbs" in r.stderr
    f.write_text(f.read_text().replace("launch_overhead_us: c}", "launch_overhead_us: c, bandwidth_gbs: d}"))
    r = cli("profile", "nota-wav2lip", "--device", "my-board", "--devices", f, "--json")
    assert r.returncode == 0, r.stderr
    plain = json.loads(r.stdout)["latency_ms_estimated"]
    assert plain["device"] == "my-board"
    f.write_text(f.read_text().replace("memory: 0.5}", "memory: 0.5, small_layer_exponent: 0.5}"))
    r = cli("list", "devices", "--devices", f)
    assert r.returncode == 2 and "my-board" in r.stderr and "full_eff_gflop" in r.stderr
    f.write_text(f.read_text().replace("small_layer_exponent: 0.5}", "small_layer_exponent: 0.5, full_eff_gflop: 1}"))
    r = cli("profile", "nota-wav2lip", "--device", "my-board", "--devices", f, "--json")
    assert r.returncode == 0, r.stderr
    slow = json.loads(r.stdout)["latency_ms_estimated"]   # every nota-wav2lip layer is under 1 GFLOP
    assert slow["small_layer_exponent"] == 0.5 and slow["value"] > plain["value"]
    s = tmp_path / "s.yaml"
    write_suite(s, metrics=["latency_ms@jetson-nanoo"])
    r = cli("run", s, "--out", tmp_path / "run")
    assert r.returncode == 2 and "jetson-nanoo" in r.stderr and "jetson-nano" in r.stderr


def test_remote_runner_through_a_local_transport(tmp_path):
    device_dir = tmp_path / "device"
    s = tmp_path / "s.yaml"
    opts = {"target": f"local:{device_dir}", "device": "jetson-xavier-nx", "python": sys.executable,
            "runs": 7, "warmup": 2}
    write_suite(s, variants=["nota-wav2lip", "nota-wav2lip@bf16",
                             {"name": "nota-ort-int8", "from": "nota-wav2lip",
                              "quantize": {"backend": "onnxruntime", "precision": "int8"}}],
                metrics=[{"name": "latency_ms_remote", "options": opts}])
    r = cli("run", s, "--out", tmp_path / "run", "--no-progress")
    assert r.returncode == 0, r.stderr
    recs = {x["variant"]: x for x in records(tmp_path / "run")}
    for name in ("nota-wav2lip", "nota-ort-int8"):
        rec = recs[name]
        assert rec["status"] == "ok" and rec["n"] == 7 and rec["value"] > 0
        assert rec["provenance"]["estimated"] is False
        assert rec["provenance"]["settings"]["target"] == f"local:{device_dir}"
        assert "jetson-xavier-nx" in rec["provenance"]["measured_on"]
    assert recs["nota-wav2lip@bf16"]["status"] == "skipped" and "ONNX" in recs["nota-wav2lip@bf16"]["reason"]
    assert (device_dir / "model.onnx").is_file() and (device_dir / "ort_bench.py").is_file()

    opts["python"] = str(tmp_path / "no-such-python")
    write_suite(s, variants=["nota-wav2lip"], metrics=[{"name": "latency_ms_remote", "options": opts}])
    r = cli("run", s, "--out", tmp_path / "run2", "--no-progress")
    assert r.returncode == 2 and "no-such-python" in r.stderr


def test_remote_output_without_timings_is_bad_input():
    from harness.remote_device import parse_output, transport_for
    with pytest.raises(BadInput, match="no timing line"):
        parse_output("Traceback ...\nImportError: onnxruntime", "ssh://board")
    assert parse_output('noise\n{"times_ms": [1.5, 2.0]}\n', "x")["times_ms"] == [1.5, 2.0]
    t = transport_for("ssh://me@board:2222/bench")
    assert (t.host, t.port, t.folder) == ("me@board", 2222, "bench")
    with pytest.raises(BadInput, match="expected local:DIR or ssh://"):
        transport_for("ftp://board")
