"""``profile VARIANT``: the efficiency metrics of one variant, without a suite."""
from __future__ import annotations

from typing import Optional

from .metrics import Cell, get_metric
from .registry import load_builtins, load_plugin
from .variants import get_variant


def profile_variant(name: str, device: str = "cpu", weights: Optional[str] = None, batch_size: int = 1,
                    threads="all", rounds: int = 3, reps: int = 5, latency: bool = True,
                    plugins=()) -> dict:
    load_builtins()
    for p in plugins:
        load_plugin(p)
    from .runner import check_device
    check_device(device)
    v = get_variant(name)
    cell = Cell(v, {}, device, None, list(plugins), weights)

    def run(metric: str, **options):
        m = get_metric(metric)
        cell.options = m.resolve_options({k: o for k, o in options.items() if k in m.options}, "profile")
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
    if latency:
        m = get_metric("latency_ms")
        cell.options = m.resolve_options({"threads": threads, "batch_size": batch_size,
                                          "rounds": rounds, "reps": reps, "warmup": 3}, "profile")
        res = m.compute_group([cell])[0]
        out["latency_ms"] = {**{k: round(x, 4) if isinstance(x, float) else x for k, x in res.stats.items()},
                             "measured_on": res.measured_on, **res.settings}
    return out
