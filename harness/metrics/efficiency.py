"""Efficiency metrics: they need the model alone, no data and no weights."""
from __future__ import annotations

from importlib.metadata import version

import torch

from ..host import host_description
from ..profiling import latency as lat
from ..profiling.macs import layers_csv, outres_layers, ptflops_macs
from ..profiling.memory import peak_cpu_mb, peak_cuda_mb
from ..profiling.size import count_params, serialized_bytes
from .base import Cell, Metric, Result, register_metric
from .options import Option


def _write(cell: Cell, rel: str, text: str) -> None:
    if cell.run_dir is not None:
        path = cell.run_dir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@register_metric("params", direction="lower", unit="count", display_scale=1e-6, display_unit="M",
                 description="number of parameters")
def params(cell: Cell) -> Result:
    # the float graph: quantized modules pack their weights and hold no nn.Parameters
    return Result(count_params(cell.float_model()), backend="torch",
                  settings={"counted_on": "fp32 graph"})


@register_metric("size_mb", direction="lower", unit="MB", display_unit="MB",
                 description="bytes of the serialised state dict at the variant's precision / 1e6")
def size_mb(cell: Cell) -> Result:
    model = cell.model()
    how = "file size" if callable(getattr(model, "serialized_bytes", None)) else "torch.save"
    return Result(serialized_bytes(model) / 1e6, backend=how,
                  settings={"precision": cell.variant.precision})


@register_metric("macs", direction="lower", unit="MAC", display_scale=1e-9, display_unit="G",
                 options={"backend": "aten", "batch_size": 1},
                 schema={"backend": Option("choice", choices=("aten", "pytorch"))},
                 description="multiply-accumulates per call (ptflops); transposed convolutions "
                             "counted at input resolution (the work they do)")
def macs(cell: Cell) -> Result:
    backend = cell.options["backend"]
    model = cell.float_model()  # MACs do not depend on precision; count the float graph
    inputs = cell.variant.inputs(int(cell.options["batch_size"]), dtype=torch.float32)
    total, report = ptflops_macs(model, inputs, backend)
    _write(cell, f"layers/{cell.variant.name}.macs-ptflops-{backend}.txt", report)
    return Result(total, backend=f"ptflops {version('ptflops')} ({backend})",
                  settings={"batch_size": cell.options["batch_size"], "counted_on": "fp32 graph"})


@register_metric("macs_outres", direction="lower", unit="MAC", display_scale=1e-9, display_unit="G",
                 options={"batch_size": 1},
                 description="MACs with every convolution (transposed too) counted at output "
                             "resolution, as thop does; the convention of the '28x' claim")
def macs_outres(cell: Cell) -> Result:
    model = cell.float_model()
    rows = outres_layers(model, cell.variant.inputs(int(cell.options["batch_size"]), dtype=torch.float32))
    _write(cell, f"layers/{cell.variant.name}.macs-outres.csv", layers_csv(rows))
    return Result(sum(r.macs for r in rows), n=len(rows), backend="harness hooks (output resolution)",
                  settings={"batch_size": cell.options["batch_size"], "counted_on": "fp32 graph"})


LATENCY_OPTIONS = {"threads": "all", "batch_size": 1, "warmup": 5, "warmup_s": 0.5, "rounds": 5,
                   "reps": 10, "max_cv": 0.5, "max_other_load": 0.5, "retries": 2,
                   "retry_budget_s": 60}


def layer_plan(cell: Cell) -> dict[str, str]:
    """Layer -> precision of a quantized variant's plan (empty: every layer at the variant's)."""
    if cell.variant.recipe is None:
        return {}
    return {r["layer"]: r["precision"] for r in cell.materialized().plan}


def estimate_cell(cell: Cell, roof, batch_size: int) -> list:
    """Per-layer roofline estimates of a cell's variant, following its precision plan."""
    from ..profiling.estimate import estimate_layers
    rows = outres_layers(cell.float_model(), cell.variant.inputs(batch_size, dtype=torch.float32))
    default = cell.variant.precision if cell.variant.precision != "mixed" else "fp32"
    return estimate_layers(rows, roof, layer_plan(cell), default)


def estimated_latency(device: str) -> Metric:
    """``latency_ms@DEVICE``: the per-layer roofline estimate for a device profile."""
    from ..devices import devices
    from ..profiling.estimate import VERSION, total_ms
    profile = devices.get(device)

    def compute(cell: Cell) -> Result:
        roof = profile.roofline_model()
        batch = int(cell.options["batch_size"])
        layers = estimate_cell(cell, roof, batch)
        top = sorted(layers, key=lambda x: -x.time_us)[:3]
        return Result(total_ms(layers, roof.fixed_overhead_us), n=len(layers), estimated=True,
                      measured_on=f"{device}: {profile.description}",
                      backend=f"harness {VERSION} (per-layer roofline + launch overhead)",
                      stats={"compute_bound_layers": sum(x.bound == "compute" for x in layers),
                             "top_layers": [{"layer": x.layer, "bound": x.bound,
                                             "us": round(x.time_us, 2)} for x in top]},
                      settings={"device": device, "batch_size": batch,
                                "precisions": sorted({x.runs_at for x in layers}),
                                # precisions the device lacks -> the rate they were estimated at
                                "fallback": {x.precision: x.runs_at for x in layers
                                             if x.precision != x.runs_at},
                                "peak_gops": roof.peak_gops, "bandwidth_gbs": roof.bandwidth_gbs,
                                "compute_eff": roof.compute_eff, "memory_eff": roof.memory_eff,
                                "small_layer_exponent": roof.small_layer_exponent,
                                "full_eff_flops": roof.full_eff_flops,
                                "launch_overhead_us": roof.launch_overhead_us,
                                "fixed_overhead_us": roof.fixed_overhead_us,
                                "basis": profile.basis, "sources": roof.sources})

    return Metric(name=f"latency_ms@{device}", direction="lower", unit="ms", compute=compute,
                  options={"batch_size": 1}, display_unit="ms",
                  description=f"estimated latency on {device} (per-layer roofline)")


@register_metric("latency_ms", direction="lower", unit="ms", display_unit="ms", group=True,
                 options=LATENCY_OPTIONS, per_device=estimated_latency,
                 description="measured wall time of one forward call (median over interleaved "
                             "rounds after warm-up)")
def latency_ms(cells: list[Cell]) -> list[Result]:
    if not cells:
        return []
    o = cells[0].options
    device = cells[0].device
    threads = lat.resolve_threads(o["threads"])
    batch = int(o["batch_size"])
    calls = {}
    for c in cells:
        model, inputs = c.model(), c.variant.inputs(batch, device)
        if callable(getattr(model, "set_threads", None)):
            model.set_threads(threads)  # a runtime with its own thread pool (ONNX Runtime)
        calls[c.variant.name] = (lambda m=model, x=inputs: m(*x))
    rule = lat.Stability(float(o["max_cv"]), float(o["max_other_load"]), int(o["retries"]),
                         float(o["retry_budget_s"]))
    stats = lat.measure_stable(calls, batch_size=batch, threads=threads, rule=rule,
                               warmup=int(o["warmup"]), warmup_s=float(o["warmup_s"]),
                               rounds=int(o["rounds"]), reps=int(o["reps"]), device=device)
    where = host_description(device)
    out = []
    for c in cells:
        s = stats[c.variant.name]
        out.append(Result(s.median_ms, n=s.n, stats=s.as_dict(),
                          backend=c.materialized().runtime,
                          settings={"threads": threads, "batch_size": batch, "warmup": int(o["warmup"]),
                                    "warmup_s": float(o["warmup_s"]),
                                    "rounds": int(o["rounds"]), "reps": int(o["reps"]),
                                    "dtype": c.variant.precision,
                                    "device": device, "interleaved_with": len(cells),
                                    "stability": {"max_cv": rule.max_cv, "max_other_load": rule.max_other_load,
                                                  "retries": rule.retries, "budget_s": rule.budget_s,
                                                  "cores": lat.cores()}},
                          measured_on=where))
    return out


@register_metric("peak_mem_mb", direction="lower", unit="MB", display_unit="MB",
                 options={"batch_size": 1},
                 description="peak memory of the model at its precision plus one forward call")
def peak_mem_mb(cell: Cell) -> Result:
    batch = int(cell.options["batch_size"])
    if cell.device.startswith("cuda"):
        value, how = peak_cuda_mb(cell.variant, batch, cell.device), "torch.cuda.max_memory_allocated"
    else:
        v = cell.variant
        value = peak_cpu_mb(v.registered_as or v.name, batch, cell.plugins,
                            recipe=v.recipe, seed=cell.seed)
        how = "process VmHWM rise (fresh process)"
    return Result(value, backend=how, settings={"batch_size": batch, "device": cell.device},
                  measured_on=host_description(cell.device))
