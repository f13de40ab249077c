"""``profile VARIANT``: the efficiency metrics of one variant, without a suite; on an
estimated device profile, the per-layer roofline estimate instead of a measurement."""
from __future__ import annotations

from typing import Optional

import torch

from .derive import at_precision, get_variant
from .errors import BadInput
from .host import check_device
from .metrics import Cell, get_metric
from .registry import load_builtins, load_plugin

MEASURED = {"cpu": "cpu", "host-cpu": "cpu", "cuda": "cuda"}


def _resolve_device(device: str) -> tuple[str, Optional[str]]:
    """(torch device to build on, estimated profile name or None)."""
    from .devices import devices
    if device in MEASURED or device.startswith("cuda:"):
        return MEASURED.get(device, device), None
    profile = devices.get(device)
    if profile.kind == "measured":
        return profile.torch_device, None
    return "cpu", profile.name


def profile_variant(name: str, device: str = "cpu", weights: Optional[str] = None, batch_size: int = 1,
                    threads="all", rounds: int = 3, reps: int = 5, latency: bool = True,
                    plugins=(), precision: Optional[str] = None, explain: bool = False,
                    seed: int = 0) -> dict:
    """``seed``: the random initialisation, as a suite's ``seed`` (0 by default), so a
    variant without weights is the same model here as in a suite run, and a quantized one
    has the same recipe hash and reuses the same cache entry (and its stored plan)."""
    load_builtins()
    for p in plugins:
        load_plugin(p)
    torch_device, estimated_on = _resolve_device(device)
    check_device(torch_device)
    v = get_variant(name)
    if precision:
        v = at_precision(v, precision)
    cell = Cell(v, {}, torch_device, None, list(plugins), weights, seed=seed)

    def run(metric: str, **options):
        m = get_metric(metric)
        cell.options = m.resolve_options({k: o for k, o in options.items() if k in m.options}, "profile")
        torch.manual_seed(seed)   # as the executor does before each cell
        return m.compute(cell)

    macs, outres = run("macs", batch_size=batch_size), run("macs_outres", batch_size=batch_size)
    out = {"variant": v.name, "family": v.family, "role": v.role, "precision": v.precision,
           "lineage": v.lineage(), "weights": weights or v.weights or "random init",
           "params": run("params").value, "size_mb": round(run("size_mb").value, 4),
           "macs": macs.value, "macs_backend": macs.backend,
           "macs_outres": outres.value, "macs_outres_backend": outres.backend,
           "batch_size": batch_size}
    if cell.weights_sha256:
        out["weights_sha256"] = cell.weights_sha256
    if v.recipe is not None:
        made = cell.provenance.get("quantize", {})
        out["quantize"] = {k: made[k] for k in ("parent", "backend", "runtime", "recipe_hash",
                                                "calibration", "output_error_vs_float", "layers")
                           if k in made}
        if "mixed" in made:
            out["quantize"]["mixed"] = made["mixed"]
        out["plan"] = cell.materialized().plan
    if estimated_on:
        out["latency_ms_estimated"] = _estimate(cell, estimated_on, batch_size, explain, out)
    elif latency:
        m = get_metric("latency_ms")
        cell.options = m.resolve_options({"threads": threads, "batch_size": batch_size,
                                          "rounds": rounds, "reps": reps, "warmup": 3}, "profile")
        res = m.compute_group([cell])[0]
        out["latency_ms"] = {**{k: round(x, 4) if isinstance(x, float) else x for k, x in res.stats.items()},
                             "measured_on": res.measured_on, "runtime": res.backend, **res.settings}
    if explain and not estimated_on:
        _estimate(cell, "host-cpu", batch_size, True, out)
    return out


def _estimate(cell: Cell, device: str, batch_size: int, explain: bool, out: dict) -> dict:
    from .devices import devices
    from .metrics.efficiency import estimate_cell
    from .profiling.estimate import explain as explain_text, total_ms
    roof = devices.get(device).roofline_model()
    layers = estimate_cell(cell, roof, batch_size)
    est = {"value": round(total_ms(layers, roof.fixed_overhead_us), 4), "device": device, "estimated": True,
           "basis": devices.get(device).basis, "fixed_overhead_us": roof.fixed_overhead_us,
           "description": devices.get(device).description,
           "compute_eff": roof.compute_eff, "memory_eff": roof.memory_eff,
           "small_layer_exponent": roof.small_layer_exponent, "full_eff_flops": roof.full_eff_flops,
           "launch_overhead_us": roof.launch_overhead_us, "sources": roof.sources}
    if explain:
        out["explain"] = {"device": device, "text": explain_text(layers),
                          "layers": [x.as_dict() for x in layers]}
    return est


def check_precision(p: Optional[str]) -> None:
    from .variants import PRECISIONS
    if p and p not in PRECISIONS:
        raise BadInput(f"--precision {p}: one of {', '.join(PRECISIONS)}")
