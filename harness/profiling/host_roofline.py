"""The host's roofline numbers, measured here: dense matmul peaks per precision, copy
bandwidth, and the estimator's efficiencies and per-layer overhead fitted to measured
latencies of single convolution blocks (conv + batch norm + ReLU). The blocks are a
generic grid (3x3 convolutions of 8 to 512 channels on 3x3 to 96x96 maps, plain,
stride 2 and transposed, plus a few 1x1 and 7x7 ones), from tens of kFLOPs to 0.7
GFLOPs, the range of a generator's layers; no model variant is in the fit, so comparing
estimates of variants with their measured latency is a validation. Cached per CPU,
thread count and torch version."""
from __future__ import annotations

import hashlib
import json
import math
import time

import numpy as np
import torch
from torch import nn

from ..cache import cache_root, write_atomic
from ..host import host_description
from .estimate import BYTES, executed_macs, small_layer_efficiency
from .latency import all_threads, measure_interleaved, num_threads
from .macs import outres_layers

FIT_VERSION = "blocks-grid-1, size-dependent efficiency"
MIN_MACS, MAX_MACS = 2e5, 4e8


def fit_blocks() -> list[tuple]:
    """(in, out, kernel, stride, input size, transposed) of the blocks the fit measures."""
    out = []
    for c in (8, 16, 32, 64, 128, 256, 512):
        for hw in (3, 6, 12, 24, 48, 96):
            if MIN_MACS <= c * c * 9 * hw * hw <= MAX_MACS:
                out.append((c, c, 3, 1, hw, False))
            if hw >= 6 and MIN_MACS <= 2 * c * c * 9 * (hw // 2) ** 2 <= MAX_MACS:
                out.append((c, 2 * c, 3, 2, hw, False))
            if c >= 16 and MIN_MACS <= 2 * c * c * 9 * hw * hw <= MAX_MACS:
                out.append((2 * c, c, 3, 2, hw, True))
    out += [(64, 64, 1, 1, 24, False), (256, 256, 1, 1, 6, False), (512, 512, 1, 1, 1, False),
            (1024, 1024, 1, 1, 1, False), (3, 32, 7, 1, 96, False), (6, 16, 7, 1, 96, False),
            (1, 32, 3, 1, 80, False)]
    return out


def _block(cin, cout, k, s, transposed):
    conv = (nn.ConvTranspose2d(cin, cout, k, s, 1, 1) if transposed
            else nn.Conv2d(cin, cout, k, s, k // 2))
    return nn.Sequential(conv, nn.BatchNorm2d(cout), nn.ReLU()).eval()


def _best_rate(fn, work: float, seconds: float = 0.3) -> float:
    fn()
    best, t_end = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        fn()
        best = max(best, work / (time.perf_counter() - t0))
    return best


def measure_peaks() -> dict:
    n = 1024
    peaks = {}
    a = torch.randn(n, n)
    peaks["fp32"] = _best_rate(lambda: a @ a, 2 * n ** 3) / 1e9
    b = a.bfloat16()
    peaks["bf16"] = _best_rate(lambda: b @ b, 2 * n ** 3) / 1e9
    h = torch.randn(256, 256).half()  # slow on most CPUs: a small one is enough to know
    peaks["fp16"] = _best_rate(lambda: h @ h, 2 * 256 ** 3) / 1e9
    try:
        q = torch.randint(-128, 127, (n, n), dtype=torch.int8)
        peaks["int8"] = _best_rate(lambda: torch._int_mm(q, q), 2 * n ** 3) / 1e9
    except (RuntimeError, AttributeError):
        pass
    return peaks


def measure_bandwidth() -> float:
    x = torch.empty(32 * 1024 * 1024)
    y = torch.empty_like(x)
    return _best_rate(lambda: y.copy_(x), 2 * x.numel() * 4) / 1e9


def predict_us(params: dict, flops, nbytes, peak: float, bw: float) -> np.ndarray:
    """The estimator's per-layer time (us) with these fitted numbers (see ``Roofline``)."""
    flops, nbytes = np.asarray(flops, float), np.asarray(nbytes, float)
    eff = small_layer_efficiency(params["compute_eff"], flops, params["small_layer_exponent"],
                                 params["full_eff_flops"])
    return (np.maximum(flops / (peak * 1e3 * eff), nbytes / (bw * 1e3 * params["memory_eff"]))
            + params["launch_overhead_us"])


def fit(samples: list[dict], peak: float, bw: float) -> dict:
    """Compute and memory efficiency, per-layer overhead and the small-layer efficiency law
    (exponent, full-efficiency flops) minimising squared log error: a grid over the plain
    roofline (exponent 0), then Nelder-Mead over all five from the best grid point."""
    from scipy.optimize import minimize
    flops = np.array([s["flops"] for s in samples], float)
    nbytes = np.array([s["bytes"] for s in samples], float)
    log_t = np.log(np.array([s["measured_us"] for s in samples], float))
    ec = np.logspace(-2.5, 0.3, 50)[:, None, None, None]
    em = np.logspace(-2, 0.5, 40)[None, :, None, None]
    oh = np.linspace(0, 200, 41)[None, None, :, None]
    pred = np.maximum(flops / (peak * 1e3 * ec), nbytes / (bw * 1e3 * em)) + oh
    err = ((np.log(pred) - log_t) ** 2).mean(-1)
    i, j, k = np.unravel_index(np.argmin(err), err.shape)

    def unpack(x) -> dict:
        return {"compute_eff": min(math.exp(x[0]), 2.0), "memory_eff": min(math.exp(x[1]), 4.0),
                "launch_overhead_us": math.expm1(max(x[2], 0.0)),
                "small_layer_exponent": float(min(max(x[3], 0.0), 2.0)), "full_eff_flops": math.exp(x[4])}

    def loss(x) -> float:
        return float(np.mean((np.log(predict_us(unpack(x), flops, nbytes, peak, bw)) - log_t) ** 2))

    base = [math.log(ec[i, 0, 0, 0]), math.log(em[0, j, 0, 0]), math.log1p(oh[0, 0, k, 0])]
    best = min((minimize(loss, np.array(base + [a, math.log(f)]), method="Nelder-Mead",
                         options={"maxiter": 4000, "xatol": 1e-5, "fatol": 1e-10})
                for a in (0.0, 0.3, 0.6) for f in (1e8, 1e9)), key=lambda r: r.fun)
    out = unpack(best.x)
    if out["small_layer_exponent"] == 0.0:
        out["full_eff_flops"] = 0.0
    out["rms_log_error"] = math.sqrt(best.fun)
    return out


def _key() -> str:
    src = f"{host_description('cpu')}|{all_threads()}|{torch.__version__}|{FIT_VERSION}|{fit_blocks()}"
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def calibrate() -> dict:
    with num_threads(all_threads()), torch.inference_mode():
        peaks, bw = measure_peaks(), measure_bandwidth()
        calls, samples = {}, []
        for cin, cout, k, s, hw, tr in fit_blocks():
            block, x = _block(cin, cout, k, s, tr), torch.randn(1, cin, hw, hw)
            row = outres_layers(block, (x,))[0]
            name = f"{'convT' if tr else 'conv'} {cin}->{cout} k{k} s{s} @{hw}"
            calls[name] = (lambda b=block, x=x: b(x))
            samples.append({"block": name, "flops": 2 * executed_macs(row),
                            "bytes": (row.params + x.numel() + np.prod(row.out_shape)) * BYTES["fp32"]})
        stats = measure_interleaved(calls, batch_size=1, threads=all_threads(), warmup=3, warmup_s=0.05,
                                    rounds=5, reps=3, device="cpu")
    for s in samples:
        s["measured_us"] = stats[s["block"]].median_ms * 1000
        s["bytes"] = int(s["bytes"])
    fitted = fit(samples, peaks["fp32"], bw)
    return {"peak_gops": peaks, "bandwidth_gbs": bw, "fit": fitted, "model": FIT_VERSION,
            "threads": all_threads(), "fitted_to": samples, "torch": torch.__version__}


def host_roofline() -> dict:
    """The host's roofline numbers (the fields of ``harness.devices.Roofline``)."""
    path = cache_root() / f"host-roofline-{_key()}.json"
    try:
        data = json.loads(path.read_text())
        data["fit"]["rms_log_error"]
    except (OSError, ValueError, KeyError, TypeError):    # none yet, or a damaged entry: measure again
        data = calibrate()
        write_atomic(path, json.dumps(data, indent=1))
    f = data["fit"]
    src = (f"measured on this host ({path.name}): matmul peaks, copy bandwidth; efficiencies, "
           f"small-layer efficiency law and overhead fitted (fp32) to {len(data['fitted_to'])} single "
           f"conv blocks, rms log error {f['rms_log_error']:.2f}")
    return {"peak_gops": data["peak_gops"], "bandwidth_gbs": data["bandwidth_gbs"],
            "compute_eff": f["compute_eff"], "memory_eff": f["memory_eff"],
            "launch_overhead_us": f["launch_overhead_us"],
            "small_layer_exponent": f["small_layer_exponent"], "full_eff_flops": f["full_eff_flops"],
            "sources": {"peak_gops": src, "bandwidth_gbs": src, "efficiency": src,
                        "launch_overhead_us": src, "file": str(path)}}
