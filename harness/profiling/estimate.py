"""Per-layer roofline latency estimates for a device profile.

Each convolution or linear layer costs max(compute time, memory time) plus a launch
overhead: compute = 2 x executed MACs / (dense peak at the layer's precision x compute
efficiency), where a profile may make small layers less efficient than big ones
(efficiency x (flops / full_eff_flops) ** small_layer_exponent below full_eff_flops);
memory = (weights + input + output activations, in bytes at that
precision) / (bandwidth x memory efficiency). Normalisation and activation layers are
taken as fused into the convolution before them (as TensorRT and ONNX Runtime do).
Transposed convolutions cost the work they do: input elements x out channels x kernel.
The sum is an estimate and is labelled so wherever it is shown."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from math import prod

import numpy as np

from .macs import LayerCount

BYTES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}
VERSION = "roofline-v2"


@dataclass
class LayerEstimate:
    layer: str
    kind: str
    precision: str
    runs_at: str          # the precision whose peak applied (a device may lack int8)
    macs: int
    bytes: int
    intensity: float      # ops per byte
    bound: str            # "compute" or "memory"
    compute_us: float
    memory_us: float
    time_us: float

    def as_dict(self) -> dict:
        return asdict(self)


def small_layer_efficiency(compute_eff: float, work, exponent: float, full_work: float):
    """Compute efficiency of layers doing ``work`` (flops, or compute time at peak, in the
    unit of ``full_work``): ``compute_eff`` from ``full_work`` up, scaled by
    (work / full_work) ** exponent below it; exponent 0 is the plain roofline."""
    work = np.asarray(work, float)
    if not exponent:
        return np.full_like(work, compute_eff)
    return compute_eff * np.minimum(1.0, np.maximum(work, 1e-9) / full_work) ** exponent


def executed_macs(row: LayerCount) -> int:
    if row.kind.startswith("ConvTranspose"):
        # the output-resolution count scaled back to the input grid the kernel really visits
        return int(row.macs * prod(row.in_shape[2:]) / max(1, prod(row.out_shape[2:])))
    return row.macs


def estimate_layers(rows: list[LayerCount], roof, plan: dict[str, str], default: str) -> list[LayerEstimate]:
    out = []
    for r in rows:
        p = plan.get(r.name, default)
        peak, runs_at = roof.peak_for(p)
        b = BYTES[runs_at]
        macs = executed_macs(r)
        nbytes = int(r.params * b + (prod(r.in_shape) + prod(r.out_shape)) * b)
        compute = 2 * macs / (peak * 1e9 * roof.compute_eff_at(2 * macs)) * 1e6
        memory = nbytes / (roof.bandwidth_gbs * 1e9 * roof.memory_eff) * 1e6
        out.append(LayerEstimate(r.name, r.kind, p, runs_at, macs, nbytes, 2 * macs / max(nbytes, 1),
                                 "compute" if compute >= memory else "memory", compute, memory,
                                 max(compute, memory) + roof.launch_overhead_us))
    return out


def total_ms(layers: list[LayerEstimate], fixed_us: float = 0.0) -> float:
    """The layers' sum plus a once-per-inference overhead (a profile's fixed_overhead_us)."""
    return (sum(x.time_us for x in layers) + fixed_us) / 1000.0


def explain(layers: list[LayerEstimate], top: int = 10) -> str:
    """Which layers dominate the estimate and why (compute- or memory-bound)."""
    total = sum(x.time_us for x in layers) or 1.0
    lines = [f"{'layer':44s} {'kind':16s} {'prec':5s} {'MMACs':>8s} {'KB':>8s} {'op/B':>7s} "
             f"{'bound':8s} {'us':>8s} {'share':>6s}"]
    for x in sorted(layers, key=lambda e: -e.time_us)[:top]:
        prec = x.precision if x.precision == x.runs_at else f"{x.precision}>{x.runs_at}"
        lines.append(f"{x.layer[:44]:44s} {x.kind[:16]:16s} {prec:5s} {x.macs / 1e6:8.2f} "
                     f"{x.bytes / 1e3:8.1f} {x.intensity:7.1f} {x.bound:8s} {x.time_us:8.1f} "
                     f"{100 * x.time_us / total:5.1f}%")
    n_compute = sum(1 for x in layers if x.bound == "compute")
    share = sum(x.time_us for x in layers if x.bound == "compute") / total
    overhead = sum(x.time_us - max(x.compute_us, x.memory_us) for x in layers) / total
    lines.append(f"{len(layers)} layers: {n_compute} compute-bound ({100 * share:.0f}% of the time), "
                 f"{len(layers) - n_compute} memory-bound; launch overhead {100 * overhead:.0f}% of the total")
    return "\n".join(lines)
