"""Sensitivity-driven mixed precision: quantize one layer at a time (simulated INT8 on
that layer alone), rank layers by the output error it causes per multiply-accumulate the
layer costs, then keep the k best-ranked layers in higher precision, k chosen from a sweep
of measured latency and error of the real INT8 models. Ranking per MAC is the greedy
answer to "most error removed for the least float compute": a big, sensitive layer kept
float can cost more time than INT8 saved everywhere else."""
from __future__ import annotations

from typing import Callable

import torch
from torch import nn
from tqdm import tqdm

from .error import output_error
from .graph import quantizable_layers, weight_layer

QMAX = 255


def _fake_act(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    """uint8 affine quantize-dequantize with a range that includes 0 (as observers do)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = max(hi - lo, 1e-8) / QMAX
    zero = round(-lo / scale)
    return (torch.clamp(torch.round(x / scale) + zero, 0, QMAX) - zero) * scale


def _fake_weight(w: torch.Tensor, transposed: bool) -> torch.Tensor:
    """int8 symmetric: per output channel, per tensor for transposed convolutions (as the
    x86 default mapping does)."""
    if transposed:
        scale = w.abs().max().clamp_min(1e-8) / 127
    else:
        scale = w.abs().reshape(w.shape[0], -1).amax(1).clamp_min(1e-8) / 127
        scale = scale.reshape(-1, *([1] * (w.dim() - 1)))
    return torch.clamp(torch.round(w / scale), -128, 127) * scale


def _macs(mod: nn.Module, x: torch.Tensor, out: torch.Tensor) -> int:
    """Multiply-accumulates of one call of a quantizable layer (per sample of the batch)."""
    w = weight_layer(mod).weight
    per_output = w[0].numel()   # conv: cin/groups x kernel; linear: in_features
    if isinstance(weight_layer(mod), nn.modules.conv._ConvTransposeNd):
        return x[0].numel() * per_output
    return out[0].numel() * per_output


def _ranges(model: nn.Module, layers: list[str], batches: list[tuple]) -> dict[str, list[float]]:
    """Per layer: [input min, input max, output min, output max, MACs per sample]."""
    mods = dict(model.named_modules())
    seen: dict[str, list[float]] = {}

    def hook(name):
        def fn(mod, args, out):
            x = args[0]
            r = seen.setdefault(name, [float("inf"), float("-inf"), float("inf"), float("-inf"),
                                       _macs(mod, x, out)])
            r[0], r[1] = min(r[0], float(x.min())), max(r[1], float(x.max()))
            r[2], r[3] = min(r[2], float(out.min())), max(r[3], float(out.max()))
        return fn

    handles = [mods[n].register_forward_hook(hook(n)) for n in layers]
    try:
        with torch.inference_mode():
            for b in batches:
                model(*b)
    finally:
        for h in handles:
            h.remove()
    return seen


def sensitivity(model: nn.Module, layers: list[str], calibration: list[tuple],
                held_out: list[tuple], progress: bool = True) -> tuple[dict[str, float], dict[str, int]]:
    """Output MSE (against the float model) when only that layer is INT8, and each layer's
    MACs per sample."""
    ranges = _ranges(model, layers, calibration)
    mods = dict(model.named_modules())
    with torch.inference_mode():
        reference = [model(*b).float() for b in held_out]
    out = {}
    for name in tqdm(layers, desc="sensitivity", unit="layer", disable=not progress or None, leave=False):
        mod, wmod = mods[name], weight_layer(mods[name])
        lo_in, hi_in, lo_out, hi_out, _ = ranges[name]
        saved = wmod.weight.data
        wmod.weight.data = _fake_weight(saved, isinstance(wmod, nn.modules.conv._ConvTransposeNd))
        pre = mod.register_forward_pre_hook(lambda m, a, lo=lo_in, hi=hi_in: (_fake_act(a[0], lo, hi), *a[1:]))
        post = mod.register_forward_hook(lambda m, a, o, lo=lo_out, hi=hi_out: _fake_act(o, lo, hi))
        try:
            with torch.inference_mode():
                se = sum(float(((model(*b).float() - r) ** 2).sum()) for b, r in zip(held_out, reference))
            out[name] = se / sum(r.numel() for r in reference)
        finally:
            pre.remove()
            post.remove()
            wmod.weight.data = saved
    return out, {name: int(ranges[name][4]) for name in layers}


def choose_k(sweep: list[dict], target: float, max_latency: float, fp32_ms: float) -> tuple[int, str]:
    """The plan to keep and why, by measured error and latency together: the fastest plan
    with error <= ``target`` x the all-INT8 error and latency <= ``max_latency`` x the
    all-INT8 latency; failing that, the lowest error x latency among plans faster than
    fp32; failing that, all INT8. The reason says which rule applied."""
    base = next(r for r in sweep if r["k"] == 0)
    mixed = [r for r in sweep if r["k"] > 0]
    ok = [r for r in mixed if r["mse"] <= target * base["mse"]
          and r["latency_ms"] <= max_latency * base["latency_ms"]]
    if ok:
        row = min(ok, key=lambda r: (r["latency_ms"], r["k"]))
        return row["k"], (f"fastest k with output MSE <= {target} x all-INT8 MSE and latency <= "
                          f"{max_latency} x all-INT8 latency")
    faster = [r for r in mixed if r["latency_ms"] < fp32_ms]
    if faster:
        row = min(faster, key=lambda r: r["mse"] * r["latency_ms"])
        return row["k"], (f"no k met MSE <= {target} x all-INT8 and latency <= {max_latency} x "
                          "all-INT8; lowest MSE x latency among plans faster than fp32")
    return 0, "every plan keeping layers high was slower than fp32: all layers INT8"


def make_plan(model: nn.Module, recipe, calibration: list[tuple], held_out: list[tuple],
              measure: Callable[[dict], dict], backend, progress: bool = True,
              fp32_model: nn.Module | None = None) -> dict:
    """The per-layer plan. ``measure({key: model})`` returns median latency (ms) per key;
    the float model (``fp32_model``, else ``model``) is measured beside the sweep.
    ``backend`` (``pt2e`` or ``torch_ao``) makes the INT8 models of the sweep."""
    kinds = quantizable_layers(model)
    layers = [n for n in kinds if n not in recipe.float_layers]
    sens, macs = sensitivity(model, layers, calibration, held_out, progress)
    ranked = sorted(layers, key=lambda n: -sens[n] / max(macs[n], 1))
    ks = sorted({min(k, len(ranked)) for k in ([recipe.mixed.k] if recipe.mixed.k is not None else [])
                 + list(recipe.mixed.sweep) + [0]})
    models = {k: backend.make(model, calibration, recipe, ranked[:k] + list(recipe.float_layers))[0]
              for k in tqdm(ks, desc="mixed sweep", unit="plan", disable=not progress or None, leave=False)}
    latency = measure({**models, "fp32": fp32_model if fp32_model is not None else model})
    sweep = [{"k": k, "latency_ms": latency[k], **output_error(model, models[k], held_out)} for k in ks]
    if recipe.mixed.k is not None:
        k, rule = min(recipe.mixed.k, len(ranked)), f"k fixed by the recipe ({recipe.mixed.k})"
    else:
        k, rule = choose_k(sweep, recipe.mixed.target, recipe.mixed.max_latency, latency["fp32"])
    chosen_ms = next(r["latency_ms"] for r in sweep if r["k"] == k)
    high = set(ranked[:k])
    rows = []
    for name, kind in kinds.items():
        if name in recipe.float_layers:
            prec, runs, why = "fp32", "fp32", "kept float by the recipe (float_layers)"
        elif name in high:
            prec, runs, why = recipe.mixed.high, "fp32", f"sensitivity-per-MAC rank {ranked.index(name) + 1}"
        else:
            prec, runs, why = "int8", "int8", f"sensitivity-per-MAC rank {ranked.index(name) + 1}"
        rows.append({"layer": name, "kind": kind, "sensitivity_mse": sens.get(name), "macs": macs.get(name),
                     "rank": ranked.index(name) + 1 if name in sens else None,
                     "precision": prec, "runs_as": runs, "why": why})
    note = (f"layers planned at {recipe.mixed.high} run as fp32 on this CPU backend "
            f"({recipe.backend} has no fp16 kernels); estimates for other devices use the plan")
    if chosen_ms >= latency["fp32"]:
        note += (f". The chosen plan measured {chosen_ms:.3f} ms, not faster than fp32 "
                 f"({latency['fp32']:.3f} ms)")
    return {"layers": rows, "sweep": sweep, "chosen_k": k, "fp32_latency_ms": latency["fp32"],
            "slower_than_fp32": chosen_ms >= latency["fp32"], "rule": f"{rule} (k in {ks})",
            "float_layers": ranked[:k] + list(recipe.float_layers), "note": note}
