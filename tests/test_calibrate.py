"""Edge calibration: the data file's checks, the fit, and calibrated profiles."""
import numpy as np
import pytest

from harness.profiling.calibrate import (Fit, fit, layer_terms, load_measurements, network_layers,
                                         predict_ms)

from conftest import cli

HEADER = "network,device,precision,batch,input,latency,unit,runtime,source\n"
ROW = "resnet18,jetson-nano,fp16,1,3x224x224,11.4,ms,TensorRT,https://example.org/table.md\n"


def test_shipped_data_loads_and_names_its_sources():
    rows = load_measurements()
    assert len(rows) >= 40 and {r.device for r in rows} == {"jetson-nano", "jetson-agx-xavier"}
    assert all(r.source.startswith("https://github.com/NVIDIA-AI-IOT/torch2trt/") for r in rows)
    assert all("wav2lip" not in r.network.lower() and r.batch == 1 for r in rows)
    nano = {r.network: r.latency_ms for r in rows if r.device == "jetson-nano"}
    assert nano["resnet18"] == 11.4 and nano["vgg16"] == 85.1


@pytest.mark.parametrize("bad, message", [
    (ROW.replace(",https://example.org/table.md", ","), "no source"),
    (ROW.replace(",ms,", ",fps,"), "unit 'fps'"),
    (ROW.replace(",11.4,", ",fast,"), "latency must be a number"),
])
def test_calibration_file_with_a_bad_row_exits_2_naming_it(tmp_path, bad, message):
    f = tmp_path / "cal.csv"
    f.write_text(HEADER + ROW + bad)
    r = cli("devices", "calibrate", "--data", f, "--no-loo")
    assert r.returncode == 2, r.stderr
    assert message in r.stderr and "row 3" in r.stderr and str(f) in r.stderr and "resnet18" in r.stderr


def test_fit_recovers_known_parameters_from_synthetic_measurements():
    rng = np.random.default_rng(0)
    terms = []
    for _ in range(12):  # networks of compute-bound, memory-bound and tiny layers
        n = int(rng.integers(10, 80))
        terms.append((rng.lognormal(2.0, 1.5, n), rng.lognormal(1.5, 1.5, n)))
    truth = Fit(0.35, 0.7, 25.0, 400.0, 0.0)
    measured = predict_ms(terms, truth.compute_eff, truth.memory_eff, truth.layer_us, truth.fixed_us)
    got = fit(terms, measured)
    assert got.compute_eff == pytest.approx(0.35, rel=0.02) and got.memory_eff == pytest.approx(0.7, rel=0.02)
    assert got.layer_us == pytest.approx(25.0, rel=0.05) and got.fixed_us == pytest.approx(400.0, rel=0.05)
    assert got.rms_log_error < 0.01


def test_fit_recovers_a_small_layer_efficiency_law():
    rng = np.random.default_rng(1)
    terms = []
    for _ in range(16):
        n = int(rng.integers(10, 80))
        terms.append((rng.lognormal(2.0, 1.5, n), rng.lognormal(1.0, 1.5, n)))
    truth = Fit(0.8, 0.6, 20.0, 300.0, 0.0, small_layer_exponent=0.4, full_eff_us=30.0)
    measured = predict_ms(terms, 0.8, 0.6, 20.0, 300.0, 0.4, 30.0)
    got = fit(terms, measured)
    assert got.rms_log_error < 0.01
    assert got.small_layer_exponent == pytest.approx(0.4, abs=0.08) and got.full_eff_us == pytest.approx(30, rel=0.3)
    assert got.compute_eff == pytest.approx(truth.compute_eff, rel=0.1)
    assert got.memory_eff == pytest.approx(truth.memory_eff, rel=0.05)


def test_network_layers_count_unfusable_norms():
    from harness.devices import devices
    from harness.registry import load_builtins
    load_builtins()
    resnet = network_layers("resnet18", 1, (3, 64, 64))
    dense = network_layers("densenet121", 1, (3, 64, 64))
    assert not [r for r in resnet if r.kind == "BatchNorm2d"]   # every norm follows its conv
    assert len([r for r in dense if r.kind == "BatchNorm2d"]) == 58 + 3 + 1  # pre-activation norms
    c, m = layer_terms(resnet, devices.get("jetson-nano").roofline, "fp16")
    assert len(c) == len(resnet) and (c > 0).all() and (m > 0).all()


def test_calibrated_profile_loads_and_estimates_stay_labelled(tmp_path):
    """A profile written by `devices calibrate` loads with --devices; its estimate says
    estimated and calibrated, and an uncalibrated profile says assumed."""
    import json

    import yaml
    data = tmp_path / "cal.csv"
    nets = {"resnet18": 11.4, "resnet34": 20.2, "squeezenet1_1": 4.34, "alexnet": 14.7,
            "squeezenet1_0": 7.6, "resnet50": 29.8, "resnet101": 51.1}
    data.write_text(HEADER + "".join(ROW.replace("resnet18", n).replace("11.4", str(t)) for n, t in nets.items()))
    out = tmp_path / "nano.yaml"
    r = cli("devices", "calibrate", "--data", data, "--out", out, "--no-loo")
    assert r.returncode == 0, r.stderr
    prof = yaml.safe_load(out.read_text())["jetson-nano"]
    assert prof["calibration"]["fp16"]["networks"] == list(nets)
    assert "fitted" in prof["sources"]["efficiency"] and prof["fixed_overhead_us"] >= 0
    text = out.read_text().replace("jetson-nano:", "my-nano:", 1)
    out.write_text(text)
    r = cli("profile", "nota-wav2lip", "--device", "my-nano", "--devices", out, "--no-latency", "--json")
    assert r.returncode == 0, r.stderr
    est = json.loads(r.stdout)["latency_ms_estimated"]
    assert est["estimated"] is True and est["basis"].startswith("calibrated")
    r = cli("profile", "nota-wav2lip", "--device", "jetson-tx2", "--no-latency", "--json")
    assert json.loads(r.stdout)["latency_ms_estimated"]["basis"] == "assumed (not fitted)"
