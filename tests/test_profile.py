import json

import pytest

from conftest import cli


@pytest.mark.parametrize("name,params,macs,outres", [
    ("wav2lip", 36_298_035, 3.97e9, 6.20e9),
    ("nota-wav2lip", 1_258_143, 75.5e6, 0.215e9),
])
def test_profile_json_reports_params_and_both_mac_conventions(name, params, macs, outres):
    r = cli("profile", name, "--json", "--rounds", "1", "--reps", "2")
    assert r.returncode == 0, r.stderr
    rep = json.loads(r.stdout)
    assert rep["params"] == params
    assert rep["macs"] == pytest.approx(macs, rel=5e-3)
    assert "aten" in rep["macs_backend"]
    assert rep["macs_outres"] == pytest.approx(outres, rel=5e-3)
    lat = rep["latency_ms"]
    assert lat["n"] == 2 and lat["min_ms"] <= lat["median_ms"] <= lat["max_ms"]
    assert lat["device"] == "cpu" and "host CPU" in lat["measured_on"]


def test_profile_bf16_halves_size_but_not_macs():
    fp32 = json.loads(cli("profile", "nota-wav2lip", "--json", "--no-latency").stdout)
    bf16 = json.loads(cli("profile", "nota-wav2lip@bf16", "--json", "--no-latency").stdout)
    assert bf16["precision"] == "bf16"
    assert bf16["size_mb"] == pytest.approx(fp32["size_mb"] / 2, rel=0.02)
    assert bf16["macs"] == fp32["macs"]


def test_profile_unknown_variant_suggests():
    r = cli("profile", "nota-wav2lp", "--no-latency")
    assert r.returncode == 2
    assert "unknown variant 'nota-wav2lp'" in r.stderr and "did you mean 'nota-wav2lip'" in r.stderr


def test_cuda_request_without_a_gpu_is_bad_input(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this host has CUDA")
    r = cli("profile", "nota-wav2lip", "--device", "cuda", "--no-latency")
    assert r.returncode == 2 and "no CUDA device" in r.stderr
    r = cli("run", "efficiency", "--device", "cuda", "--out", tmp_path / "run")
    assert r.returncode == 2 and "no CUDA device" in r.stderr
    r = cli("profile", "nota-wav2lip", "--device", "tpu", "--no-latency")
    assert r.returncode == 2 and "unknown device 'tpu'" in r.stderr and "jetson-nano" in r.stderr
