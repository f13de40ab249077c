"""Calibration of a device profile on public latency measurements of other networks.

The data (``harness/calibration/*.csv``) are published batch-1 latencies of torchvision
classifiers under TensorRT on Jetson boards, one row per network, device and precision,
each with its source. No measurement of Wav2Lip or of its compressed students is used.
The architectures are rebuilt from torchvision without weights, counted layer by layer,
and the estimator's free numbers are fitted per device and precision:

    latency = fixed + sum over layers of
              (max(compute at peak / eff(layer), memory at bandwidth / memory_eff) + per_layer)
    eff(layer) = compute_eff x min(1, compute at peak / full_eff) ** small_layer_exponent

where the layers are the convolutions and linear layers plus the batch norms that do not
follow a convolution (those cannot be folded); activations, pooling and additions are taken
as fused into or hidden behind them. Small layers may run below the big layers' compute
efficiency (the exponent; 0 is the plain roofline). The fit minimises squared log error: a
coarse grid of the plain roofline, then Nelder-Mead over all six numbers from the best grid
point. Leave-one-network-out error is the estimator's honest accuracy."""
from __future__ import annotations

import csv
import functools
import hashlib
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from ..errors import BadInput
from .estimate import estimate_layers, small_layer_efficiency

DATA = Path(__file__).resolve().parents[1] / "calibration" / "jetson_tensorrt.csv"
COLUMNS = ("network", "device", "precision", "batch", "input", "latency", "unit", "runtime", "source")
UNITS_MS = {"ms": 1.0, "us": 1e-3, "s": 1e3}
GRID = {"compute_eff": np.logspace(-2.5, 0, 26), "memory_eff": np.logspace(-2, 0.3, 24),
        "layer_us": np.concatenate([[0.0], np.logspace(0, 2.7, 28)]),
        "fixed_us": np.concatenate([[0.0], np.logspace(1, 3.7, 28)])}


@dataclass(frozen=True)
class Measurement:
    network: str
    device: str
    precision: str
    batch: int
    input: tuple
    latency_ms: float
    runtime: str
    source: str
    row: int


@dataclass
class Fit:
    compute_eff: float
    memory_eff: float
    layer_us: float
    fixed_us: float
    rms_log_error: float
    small_layer_exponent: float = 0.0
    full_eff_us: float = 0.0       # compute time at peak (us) from which a layer runs at compute_eff

    def as_dict(self) -> dict:
        return {k: float(f"{v:.4g}") for k, v in asdict(self).items()}


def load_measurements(path: str | Path = DATA) -> list[Measurement]:
    """Rows of a calibration file; a missing column, source or a bad value or unit exits 2
    naming the file and the row."""
    from ..devices import ROOFLINE_PRECISIONS
    path = Path(path)
    if not path.is_file():
        raise BadInput(f"calibration file not found: {path}")
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise BadInput(f"{path}: missing column(s) {', '.join(missing)} (needs {', '.join(COLUMNS)})")
        out = []
        for raw in reader:
            row = reader.line_num
            where = f"{path}, row {row} ({raw.get('network') or '?'} on {raw.get('device') or '?'})"
            if not (raw["source"] or "").strip():
                raise BadInput(f"{where}: no source (every measurement needs where it was published)")
            unit = (raw["unit"] or "").strip()
            if unit not in UNITS_MS:
                raise BadInput(f"{where}: unit '{unit}' is not a latency unit ({', '.join(UNITS_MS)}); "
                               "convert throughput to per-batch latency first")
            if raw["precision"] not in ROOFLINE_PRECISIONS:
                raise BadInput(f"{where}: precision '{raw['precision']}' is not one of "
                               f"{', '.join(ROOFLINE_PRECISIONS)}")
            try:
                latency, batch = float(raw["latency"]), int(raw["batch"])
                shape = tuple(int(x) for x in raw["input"].split("x"))
            except (TypeError, ValueError):
                raise BadInput(f"{where}: latency must be a number, batch an integer and input CxHxW "
                               f"(got {raw['latency']!r}, {raw['batch']!r}, {raw['input']!r})") from None
            if not (latency > 0 and batch > 0 and len(shape) == 3):
                raise BadInput(f"{where}: latency and batch must be positive and input CxHxW")
            out.append(Measurement(raw["network"].strip(), raw["device"].strip(), raw["precision"], batch,
                                   shape, latency * UNITS_MS[unit], (raw["runtime"] or "").strip(),
                                   raw["source"].strip(), row))
    return out


def unfused_norms(model, inputs: tuple) -> list:
    """Batch norms whose input is not a convolution's output (pre-activation blocks, as in
    DenseNet): an engine cannot fold them into a convolution, so they run as their own
    memory-bound layer. Wav2Lip-style blocks (conv -> norm -> act) have none."""
    from torch import nn

    from .macs import LayerCount, forward_with_hooks
    names = {m: n for n, m in model.named_modules()}
    last_conv_out, rows = [None], []

    def hook(mod, args, out):
        if isinstance(mod, (nn.Conv2d, nn.Linear)):
            last_conv_out[0] = out
        elif isinstance(mod, nn.BatchNorm2d) and args[0] is not last_conv_out[0]:
            rows.append(LayerCount(names[mod], "BatchNorm2d", 0, sum(p.numel() for p in mod.parameters()),
                                   tuple(args[0].shape), tuple(out.shape)))

    forward_with_hooks(model, inputs, hook, [m for m in model.modules()
                                             if isinstance(m, (nn.Conv2d, nn.Linear, nn.BatchNorm2d))])
    return rows


@functools.lru_cache(maxsize=None)
def network_layers(network: str, batch: int, shape: tuple) -> tuple:
    """Per-layer counts of a torchvision classifier built without weights: convolutions and
    linear layers, then the batch norms no convolution absorbs."""
    import torch
    import torchvision

    from .macs import outres_layers
    builder = getattr(torchvision.models, network, None)
    if not callable(builder):
        raise BadInput(f"calibration network '{network}' is not a torchvision.models builder")
    with torch.random.fork_rng():
        model = builder(weights=None).eval()
    x = (torch.zeros(batch, *shape),)
    return tuple(outres_layers(model, x) + unfused_norms(model, x))


def layer_terms(layers, roof, precision: str) -> tuple[np.ndarray, np.ndarray]:
    """Per layer: compute time at full peak and memory time at full bandwidth (us)."""
    from ..devices import Roofline
    ideal = Roofline(roof.peak_gops, roof.bandwidth_gbs, 1.0, 1.0, 0.0, {})
    est = estimate_layers(list(layers), ideal, {}, precision)
    return np.array([e.compute_us for e in est]), np.array([e.memory_us for e in est])


def predict_ms(terms, compute_eff, memory_eff, layer_us, fixed_us, exponent=0.0, full_us=0.0) -> np.ndarray:
    return np.array([(fixed_us + np.maximum(c / small_layer_efficiency(compute_eff, c, exponent, full_us), m / memory_eff).sum()
                      + layer_us * len(c)) / 1000 for c, m in terms])


def _predict(terms, f: Fit) -> np.ndarray:
    return predict_ms(terms, f.compute_eff, f.memory_eff, f.layer_us, f.fixed_us, f.small_layer_exponent,
                      f.full_eff_us)


def _loss_fn(terms, measured_ms):
    """Mean squared log error as a function of the six numbers (layers flattened once)."""
    c, m = np.concatenate([t[0] for t in terms]), np.concatenate([t[1] for t in terms])
    starts = np.cumsum([0] + [len(t[0]) for t in terms])[:-1]
    n_layers = np.array([len(t[0]) for t in terms], float)
    log_t = np.log(np.asarray(measured_ms, float))

    def loss(p) -> float:
        ec, em, layer_us, fixed_us, exponent, full_us = p
        layer = np.maximum(c / small_layer_efficiency(ec, c, exponent, full_us), m / em)
        pred = (fixed_us + np.add.reduceat(layer, starts) + layer_us * n_layers) / 1000
        return float(np.mean((np.log(pred) - log_t) ** 2))
    return loss


def fit(terms: list[tuple[np.ndarray, np.ndarray]], measured_ms) -> Fit:
    """Least squared log error over a grid of the plain roofline, refined by Nelder-Mead
    over all six numbers (efficiencies <= 2, exponent 0 to 2) from the best grid point,
    with and without a small-layer law to start from; the best of those is kept."""
    from scipy.optimize import minimize
    measured_ms = np.asarray(measured_ms, float)
    log_t = np.log(measured_ms * 1000)
    ec, em = GRID["compute_eff"], GRID["memory_eff"]
    n_layers = np.array([len(c) for c, _ in terms], float)
    # per network and (compute_eff, memory_eff): the summed roofline time
    rooftime = np.stack([np.maximum(c[None, None, :] / ec[:, None, None], m[None, None, :] / em[None, :, None])
                         .sum(-1) for c, m in terms], -1)                       # (ec, em, net)
    oh, fx = GRID["layer_us"][:, None, None], GRID["fixed_us"][None, :, None]
    best = (math.inf, None)
    for i in range(len(ec)):
        for j in range(len(em)):
            err = ((np.log(fx + rooftime[i, j] + oh * n_layers) - log_t) ** 2).mean(-1)
            a, b = np.unravel_index(np.argmin(err), err.shape)
            if err[a, b] < best[0]:
                best = (float(err[a, b]), (ec[i], em[j], GRID["layer_us"][a], GRID["fixed_us"][b], 0.0, 1.0))
    x0 = [math.log(best[1][0]), math.log(best[1][1]), math.log1p(best[1][2]), math.log1p(best[1][3])]

    def unpack(x):
        return (min(math.exp(x[0]), 2.0), min(math.exp(x[1]), 2.0), math.expm1(max(x[2], 0.0)),
                math.expm1(max(x[3], 0.0)), min(max(float(x[4]), 0.0), 2.0), math.exp(x[5]))

    loss = _loss_fn(terms, measured_ms)
    p, p_loss = best[1], best[0]
    for exponent, full_us in ((0.0, 1.0), (0.3, 3.0), (0.3, 30.0)):
        res = minimize(lambda x: loss(unpack(x)), np.array(x0 + [exponent, math.log(full_us)]),
                       method="Nelder-Mead", options={"xatol": 1e-4, "fatol": 1e-9, "maxiter": 1500})
        if res.fun < p_loss:
            p, p_loss = unpack(res.x), res.fun
    ec_, em_, layer_us, fixed_us, exponent, full_us = p
    if exponent == 0.0:
        full_us = 0.0
    return Fit(ec_, em_, layer_us, fixed_us, math.sqrt(loss(p)), exponent, full_us)


def leave_one_out(terms, measured_ms) -> np.ndarray:
    """Each network's latency predicted by a fit to all the others."""
    measured_ms = np.asarray(measured_ms, float)
    out = np.empty(len(terms))
    for i in range(len(terms)):
        keep = [j for j in range(len(terms)) if j != i]
        f = fit([terms[j] for j in keep], measured_ms[keep])
        out[i] = _predict([terms[i]], f)[0]
    return out


def file_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def calibrate_device(profile, rows: list[Measurement], loo: bool = True) -> dict:
    """Fit per precision for one device profile; the result carries its provenance."""
    roof = profile.roofline_model()
    out = {}
    for precision in sorted({r.precision for r in rows}):
        sel = [r for r in rows if r.precision == precision]
        if len(sel) < 7:
            raise BadInput(f"device '{profile.name}': {len(sel)} {precision} measurements; "
                           "a fit of 6 numbers needs at least 7")
        terms = [layer_terms(network_layers(r.network, r.batch, r.input), roof, precision) for r in sel]
        measured = np.array([r.latency_ms for r in sel])
        f = fit(terms, measured)
        entry = {"fit": f.as_dict(), "networks": [r.network for r in sel],
                 "measured_ms": [r.latency_ms for r in sel],
                 "fitted_ms": [round(float(x), 4) for x in _predict(terms, f)],
                 "sources": sorted({r.source for r in sel}),
                 "runtime": sorted({r.runtime for r in sel})}
        if loo:
            pred = leave_one_out(terms, measured)
            rel = np.abs(pred / measured - 1)
            entry["leave_one_out_ms"] = [round(float(x), 4) for x in pred]
            entry["leave_one_out_abs_rel_error"] = {"median": round(float(np.median(rel)), 4),
                                                    "mean": round(float(rel.mean()), 4),
                                                    "max": round(float(rel.max()), 4)}
        out[precision] = entry
    return out


def calibrated_profile(profile, fits: dict, data: Path) -> dict:
    """The profile's YAML fields with the fitted numbers and their provenance. The profile
    fields hold one set of numbers; with data at one precision only, that fit applies to
    every precision, and the sources say so."""
    roof = profile.roofline_model()
    precision = "fp16" if "fp16" in fits else sorted(fits)[0]
    f = fits[precision]["fit"]
    loo = {p: c.get("leave_one_out_abs_rel_error") for p, c in fits.items()}
    sha = file_sha256(data)
    try:
        shown = str(Path(data).resolve().relative_to(Path(__file__).resolve().parents[2]))
    except ValueError:
        shown = str(data)
    n = len(fits[precision]["networks"])
    fitted = (f"fitted ({precision}, {n} networks) to published batch-1 latencies of torchvision "
              f"classifiers ({shown}, sha256 {sha[:12]}); leave-one-network-out |error| "
              + (f"median {loo[precision]['median']:.0%}, max {loo[precision]['max']:.0%}"
                 if loo[precision] else "not computed")
              + ("" if len(fits) > 1 else f"; no data at other precisions: this {precision} fit "
                                           "applies to every precision"))
    sources = {k: v for k, v in roof.sources.items() if k in ("peak_gops", "bandwidth_gbs")}
    sources.update(efficiency=fitted, launch_overhead_us=fitted, fixed_overhead_us=fitted)
    efficiency = {"compute": f["compute_eff"], "memory": f["memory_eff"]}
    if f.get("small_layer_exponent"):   # the full-efficiency size in flops at the fit's precision's peak
        efficiency.update(small_layer_exponent=f["small_layer_exponent"],
                          full_eff_gflop=float(f"{f['full_eff_us'] * roof.peak_for(precision)[0] * 1e-6:.4g}"))
    return {"description": profile.description, "peak_gops": dict(roof.peak_gops),
            "bandwidth_gbs": roof.bandwidth_gbs,
            "efficiency": efficiency,
            "launch_overhead_us": f["layer_us"], "fixed_overhead_us": f["fixed_us"],
            "sources": sources,
            "calibration": {p: {"data": shown, "sha256": sha, "fit": c["fit"], "networks": c["networks"],
                                "published": c["sources"], "runtime": c["runtime"],
                                "leave_one_out_abs_rel_error": c.get("leave_one_out_abs_rel_error")}
                            for p, c in fits.items()}}
