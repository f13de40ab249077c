"""Quantized variants: ONNX Runtime fidelity, INT8 and mixed plans, recipe errors."""
import json

import pytest
import torch

from harness.derive import get_variant, materialize, quantized_variant
from harness.registry import load_builtins

from conftest import cli, records, write_suite


@pytest.fixture(scope="module")
def nota():
    load_builtins()
    return get_variant("nota-wav2lip")


def _inputs(seed, batch=2):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, 80, 16, generator=g) * 8 - 4, torch.rand(batch, 6, 96, 96, generator=g)


def test_onnxruntime_fp32_equals_pytorch_fp32(nota):
    torch.manual_seed(3)
    v = quantized_variant(nota, {"backend": "onnxruntime", "precision": "fp32"})
    ort = materialize(v, "cpu")
    ort_model = ort.model
    torch.manual_seed(3)
    float_model = materialize(nota, "cpu").model
    x = _inputs(11)  # not the calibration or export inputs, and another batch size
    with torch.inference_mode():
        diff = (ort_model(*x) - float_model(*x)).abs().max().item()
    assert diff < 1e-4
    assert {r["precision"] for r in ort.plan} == {"fp32"}


def test_int8_variant_is_callable_like_its_parent_smaller_and_cached(nota):
    torch.manual_seed(0)
    v = get_variant("nota-wav2lip@int8")
    assert v.role == "quantized" and v.parent == "nota-wav2lip" and v.lineage()[-2:] == ["nota-wav2lip", v.name]
    mat = materialize(v, "cpu")
    q = mat.model
    made = mat.provenance["quantize"]
    assert made["calibration"]["source"] == "stand-in" and made["calibration"]["quality_claim"] is False
    assert len(made["calibration"]["sha256"]) == 64 and made["parent"] == "nota-wav2lip"
    plan = mat.plan
    assert len(plan) == 23 and {r["precision"] for r in plan} == {"int8"}
    x = _inputs(5)
    out = q(*x)
    assert out.shape == (2, 3, 96, 96) and torch.isfinite(out).all()
    err = made["output_error_vs_float"]
    assert 0 < err["mse"] < 1e-3 and err["psnr_db"] > 30
    from harness.profiling.size import serialized_bytes
    torch.manual_seed(0)
    fp32 = materialize(nota, "cpu").model
    assert serialized_bytes(q) < serialized_bytes(fp32) / 3
    torch.manual_seed(0)
    again = materialize(v, "cpu")  # from the cache: same recipe hash, same outputs
    assert again.provenance["quantize"]["recipe_hash"] == made["recipe_hash"]
    assert torch.equal(again.model(*x), out)


def test_mixed_plan_lists_every_layer_and_sits_between_int8_and_fp32(nota):
    torch.manual_seed(0)
    v = quantized_variant(nota, {"precision": "mixed", "mixed": {"sweep": [0, 1, 2]}})
    mat = materialize(v, "cpu")
    plan = mat.plan
    assert len(plan) == 23
    assert all(r["sensitivity_mse"] is not None and r["rank"] for r in plan)
    ranks = sorted(r["rank"] for r in plan)
    assert ranks == list(range(1, 24))
    mixed = mat.provenance["quantize"]["mixed"]
    k = mixed["chosen_k"]
    high = [r for r in plan if r["precision"] == "fp16"]
    assert 1 <= k < 23 and len(high) == k and all(r["rank"] <= k for r in high)
    sweep = {row["k"]: row for row in mixed["sweep"]}
    err = mat.provenance["quantize"]["output_error_vs_float"]["mse"]
    assert 0 < err < sweep[0]["mse"]   # better than all-INT8, not exact like fp32


def test_unknown_backend_and_layer_name_exit_2(tmp_path):
    s = tmp_path / "s.yaml"
    write_suite(s, variants=[{"name": "q", "from": "nota-wav2lip", "quantize": {"backend": "tensorrt"}}])
    r = cli("run", s, "--out", tmp_path / "a")
    assert r.returncode == 2 and "tensorrt" in r.stderr and "onnxruntime" in r.stderr
    write_suite(s, variants=[{"name": "q", "from": "nota-wav2lip",
                              "quantize": {"float_layers": ["output_block.9"]}}])
    r = cli("run", s, "--out", tmp_path / "b")
    assert r.returncode == 2 and "output_block.9" in r.stderr and "output_block.1" in r.stderr
    write_suite(s, variants=[{"name": "q", "from": "nota-wav2lip",
                              "quantize": {"backend": "onnxruntime", "precision": "mixed"}}])
    r = cli("run", s, "--out", tmp_path / "c")
    assert r.returncode == 2 and "precision" in r.stderr and "mixed" in r.stderr


def test_suite_records_quantized_provenance_and_plans(tmp_path):
    s = tmp_path / "s.yaml"
    write_suite(s, variants=["nota-wav2lip", "nota-wav2lip@int8",
                             {"name": "nota-ort-int8", "from": "nota-wav2lip",
                              "quantize": {"backend": "onnxruntime", "precision": "int8"}}],
                metrics=["params", "size_mb", {"name": "latency_ms", "options": {"rounds": 2, "reps": 2}}])
    r = cli("run", s, "--out", tmp_path / "run", "--no-progress")
    assert r.returncode == 0, r.stderr
    recs = {(x["variant"], x["metric"]): x for x in records(tmp_path / "run")}
    assert recs[("nota-wav2lip@int8", "params")]["value"] == recs[("nota-wav2lip", "params")]["value"]
    lat = recs[("nota-ort-int8", "latency_ms")]
    assert lat["provenance"]["backend"].startswith("onnxruntime")
    assert lat["provenance"]["quantize"]["parent"] == "nota-wav2lip"
    assert recs[("nota-wav2lip@int8", "latency_ms")]["provenance"]["backend"].startswith("torch")
    plan = json.loads((tmp_path / "run" / "plans" / "nota-ort-int8.json").read_text())
    transposed = [row for row in plan["plan"] if row["op"] == "ConvTranspose"]
    assert transposed and all(row["precision"] == "fp32" and "no INT8 ConvTranspose" in row["why"]
                              for row in transposed)
    assert {row["precision"] for row in plan["plan"] if row["op"] == "Conv"} == {"int8"}
