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
    # not 4x: the sub-pixel form of each 3x3 stride-2 transposed convolution stores 4 phases
    # of 2x2 taps (16) where the transposed kernel has 9
    assert serialized_bytes(q) < serialized_bytes(fp32) / 2.5
    assert made["subpixel_rewritten"] and all(r["form"].startswith("sub-pixel") for r in plan
                                              if r["kind"] == "ConvTranspose2d")
    torch.manual_seed(0)
    again = materialize(v, "cpu")  # from the cache: same recipe hash, same outputs
    assert again.provenance["quantize"]["recipe_hash"] == made["recipe_hash"]
    assert torch.equal(again.model(*x), out)


def test_mixed_plan_lists_every_layer_and_sits_between_int8_and_fp32(nota):
    torch.manual_seed(0)
    # latency is measured; a loose latency bound keeps the choice about error on a busy host
    v = quantized_variant(nota, {"precision": "mixed", "mixed": {"sweep": [0, 1, 2], "max_latency": 100}})
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
    assert mixed["fp32_latency_ms"] > 0 and isinstance(mixed["slower_than_fp32"], bool)


def test_mixed_choice_weighs_error_and_latency_and_names_the_rule():
    from harness.quantize.mixed import choose_k

    def sweep(*rows):
        return [{"k": k, "mse": e, "latency_ms": t} for k, e, t in rows]
    # k=1 meets the error target but is too slow; k=4 meets both
    k, rule = choose_k(sweep((0, 10, 5.0), (1, 4, 7.0), (4, 3, 5.5)), 0.5, 1.2, fp32_ms=9.0)
    assert k == 4 and "fastest" in rule
    # none meets both: the best error x latency among plans faster than fp32 (not k=2)
    k, rule = choose_k(sweep((0, 10, 5.0), (1, 8, 6.5), (2, 1, 20.0)), 0.5, 1.2, fp32_ms=9.0)
    assert k == 1 and "faster than fp32" in rule
    # every mixed plan slower than fp32: all INT8, and the rule says so
    k, rule = choose_k(sweep((0, 10, 5.0), (1, 1, 9.5)), 0.5, 1.2, fp32_ms=9.0)
    assert k == 0 and "slower than fp32" in rule


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
    assert "PT2E" in recs[("nota-wav2lip@int8", "latency_ms")]["provenance"]["backend"]
    plan = json.loads((tmp_path / "run" / "plans" / "nota-ort-int8.json").read_text())["plan"]
    # the transposed convolutions run as INT8 Conv in their sub-pixel form
    rewritten = [row for row in plan if "form" in row]
    assert len(rewritten) == 6 and all(row["layer"].startswith("face_decoder_blocks") for row in rewritten)
    assert {row["op"] for row in plan} == {"Conv"} and {row["precision"] for row in plan} == {"int8"}


def test_torch_ao_backend_is_kept_behind_the_same_adapter(nota):
    torch.manual_seed(0)
    v = quantized_variant(nota, {"backend": "torch", "precision": "int8"})
    assert v.name == "nota-wav2lip@ao-int8"
    mat = materialize(v, "cpu")
    assert "torch.ao" in mat.runtime and {r["precision"] for r in mat.plan} == {"int8"}
    assert all(r["why"] == "torch.ao default mapping" for r in mat.plan)
    assert 0 < mat.provenance["quantize"]["output_error_vs_float"]["mse"] < 1e-3


class _Tiny(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.a = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.b = torch.nn.Conv2d(8, 3, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.b(torch.relu(self.a(x))))


def test_pt2e_rebuilds_exactly_from_its_cached_state_and_compiles_per_thread_count():
    import io

    from harness.quantize import pt2e
    torch.manual_seed(0)
    model = _Tiny().eval()
    calibration = [(torch.rand(2, 3, 16, 16),) for _ in range(3)]
    q, state = pt2e.quantize(model, calibration, float_layers=["b"])
    buf = io.BytesIO()
    torch.save(state, buf)   # what the cache holds: plain tensors, loadable without pickled code
    state = torch.load(io.BytesIO(buf.getvalue()), weights_only=True)
    again = pt2e.rebuild(model, calibration[0], state, ["b"])
    x = torch.rand(5, 3, 16, 16)     # another batch size than calibration
    before = torch.get_num_threads()
    try:
        out = q(x)
        torch.set_num_threads(1)
        out_1 = q(x)
    finally:
        torch.set_num_threads(before)
    assert torch.equal(again(x), out) and (out_1 - out).abs().max() < 1e-5
    assert len(q._compiled) == 2 if before != 1 else len(q._compiled) == 1
    # another input signature compiles its own code; a non-contiguous input is made contiguous
    assert (q(x[:2]) - out[:2]).abs().max() < 1e-5
    assert (q(x.transpose(2, 3).contiguous().transpose(2, 3)) - out).abs().max() < 1e-5
    with torch.no_grad():
        assert 0 < (out - model(x)).abs().max() < 0.05
    ops = {str(n.target) for n in q.graph.graph.nodes if n.op == "call_function"}
    assert any("quantize_per_tensor" in o for o in ops)
    bad = dict(state)
    bad.pop(next(iter(bad)))
    with pytest.raises(ValueError, match="do not fit"):
        pt2e.rebuild(model, calibration[0], bad, ["b"])


def test_pt2e_recipe_and_missing_package_errors(nota, tmp_path, monkeypatch):
    from harness.errors import BadInput
    from harness.quantize import pt2e
    s = tmp_path / "s.yaml"
    write_suite(s, variants=[{"name": "q", "from": "nota-wav2lip", "quantize": {"per_channel": False}}])
    r = cli("run", s, "--out", tmp_path / "a")
    assert r.returncode == 2 and "per_channel" in r.stderr and "pt2e" in r.stderr
    monkeypatch.setitem(__import__("sys").modules, "torchao", None)   # as if not installed
    with pytest.raises(BadInput, match="backend 'pt2e' needs the package torchao"):
        pt2e.require()


def test_onnxruntime_without_subpixel_keeps_transposed_convolutions_float(nota):
    torch.manual_seed(0)
    v = quantized_variant(nota, {"backend": "onnxruntime", "precision": "int8", "subpixel": False})
    mat = materialize(v, "cpu")
    transposed = [row for row in mat.plan if row["op"] == "ConvTranspose"]
    assert len(transposed) == 6 and all(row["precision"] == "fp32" and "no INT8 ConvTranspose" in row["why"]
                                        for row in transposed)
    assert {row["precision"] for row in mat.plan if row["op"] == "Conv"} == {"int8"}


def _transposed_configs(model, inputs):
    """(kernel, stride, padding, output_padding, input size) of every ConvTranspose2d call."""
    seen = []
    hooks = [m.register_forward_hook(lambda m, a, o: seen.append(
        (m.kernel_size, m.stride, m.padding, m.output_padding, tuple(a[0].shape[2:]))))
        for m in model.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    with torch.inference_mode():
        model(*inputs)
    for h in hooks:
        h.remove()
    return seen


@pytest.mark.parametrize("name", ["nota-wav2lip", "wav2lip"])
def test_subpixel_rewrite_equals_the_float_model(name):
    """Layer by layer on the configurations the generator uses, then the whole model."""
    import copy

    from harness.quantize.graph import fold_batchnorm, quantizable_layers
    from harness.quantize.subpixel import from_transposed, rewrite
    load_builtins()
    torch.manual_seed(0)
    model = get_variant(name).build_float()[0].eval()
    x = _inputs(7)
    configs = _transposed_configs(model, x)
    assert {c[:4] for c in configs} == {((3, 3), (1, 1), (0, 0), (0, 0)), ((3, 3), (2, 2), (1, 1), (1, 1))}
    for k, s, p, op, hw in configs:
        layer = torch.nn.ConvTranspose2d(5, 7, k, s, p, op).eval()
        y = torch.randn(2, 5, *hw)
        with torch.inference_mode():
            assert torch.allclose(from_transposed(layer)(y), layer(y), atol=1e-5, rtol=1e-5)
    for k, s, p, op in [(4, 2, 1, 0), (3, 2, 1, 0), (5, 2, 2, 1), (3, 3, 1, 2), (2, 2, 0, 0)]:
        layer = torch.nn.ConvTranspose2d(3, 4, k, s, p, op).eval()  # other shapes: odd sizes, trims
        y = torch.randn(1, 3, 5, 6)
        with torch.inference_mode():
            assert torch.allclose(from_transposed(layer)(y), layer(y), atol=1e-5, rtol=1e-5)
    rewritten = copy.deepcopy(model)
    fold_batchnorm(rewritten)
    names = rewrite(rewritten)
    assert len(names) == len(configs) and quantizable_layers(rewritten) == quantizable_layers(model)
    assert not any(isinstance(m, torch.nn.ConvTranspose2d) for m in rewritten.modules())
    with torch.inference_mode():
        ref, out = model(*x), rewritten(*x)
    assert (out - ref).abs().max().item() < 1e-5
