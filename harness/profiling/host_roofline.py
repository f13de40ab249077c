"""The host's roofline numbers, measured here: dense matmul peaks per precision, copy
bandwidth, and efficiency factors plus a per-layer overhead fitted to measured latencies
of single convolution blocks (conv + batch norm + ReLU, the shapes of a small generator).
No model variant is in the fit, so comparing estimates of variants with their measured
latency is a validation. Cached per CPU, thread count and torch version."""
from __future__ import annotations

import hashlib
import json
import time

import numpy as np
import torch
from torch import nn

from ..cache import cache_root, write_atomic
from ..host import host_description
from .latency import all_threads, measure_interleaved, num_threads
from .macs import outres_layers

# (in, out, kernel, stride, input size, transposed)
FIT_BLOCKS = [(6, 16, 7, 1, 96, False), (16, 32, 3, 2, 96, False), (32, 32, 3, 1, 48, False),
              (8, 8, 3, 1, 48, False), (64, 64, 3, 1, 24, False), (32, 64, 3, 2, 48, False),
              (128, 128, 3, 1, 12, False), (256, 256, 3, 1, 6, False), (512, 512, 3, 1, 3, False),
              (512, 512, 1, 1, 1, False), (1024, 512, 3, 2, 3, True), (256, 128, 3, 2, 12, True),
              (64, 32, 3, 2, 24, True), (160, 80, 3, 2, 48, True)]


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


def fit(samples: list[dict], peak: float, bw: float) -> tuple[float, float, float, float]:
    """Grid search of (compute eff, memory eff, overhead us) minimising squared log error."""
    flops = np.array([s["flops"] for s in samples])
    nbytes = np.array([s["bytes"] for s in samples])
    t = np.array([s["measured_us"] for s in samples])
    ec = np.logspace(-2.5, 0, 50)[:, None, None, None]
    em = np.logspace(-2, 0.5, 40)[None, :, None, None]
    oh = np.linspace(0, 100, 51)[None, None, :, None]
    pred = np.maximum(flops / (peak * 1e3 * ec), nbytes / (bw * 1e3 * em)) + oh
    err = ((np.log(pred) - np.log(t)) ** 2).mean(-1)
    i, j, k = np.unravel_index(np.argmin(err), err.shape)
    return float(ec[i, 0, 0, 0]), float(em[0, j, 0, 0]), float(oh[0, 0, k, 0]), float(np.sqrt(err[i, j, k]))


def _key() -> str:
    src = f"{host_description('cpu')}|{all_threads()}|{torch.__version__}|{len(FIT_BLOCKS)}"
    return hashlib.sha256(src.encode()).hexdigest()[:16]


def calibrate() -> dict:
    from .estimate import BYTES, executed_macs
    with num_threads(all_threads()), torch.inference_mode():
        peaks, bw = measure_peaks(), measure_bandwidth()
        calls, samples = {}, []
        for cin, cout, k, s, hw, tr in FIT_BLOCKS:
            block, x = _block(cin, cout, k, s, tr), torch.randn(1, cin, hw, hw)
            row = outres_layers(block, (x,))[0]
            name = f"{'convT' if tr else 'conv'} {cin}->{cout} k{k} s{s} @{hw}"
            calls[name] = (lambda b=block, x=x: b(x))
            samples.append({"block": name, "flops": 2 * executed_macs(row),
                            "bytes": (row.params + x.numel() + np.prod(row.out_shape)) * BYTES["fp32"]})
        stats = measure_interleaved(calls, batch_size=1, threads=all_threads(), warmup=3, warmup_s=0.5,
                                    rounds=5, reps=5, device="cpu")
    for s in samples:
        s["measured_us"] = stats[s["block"]].median_ms * 1000
        s["bytes"] = int(s["bytes"])
    ec, em, oh, rmse = fit(samples, peaks["fp32"], bw)
    return {"peak_gops": peaks, "bandwidth_gbs": bw, "compute_eff": ec, "memory_eff": em,
            "launch_overhead_us": oh, "fit_rms_log_error": rmse, "threads": all_threads(),
            "fitted_to": samples, "torch": torch.__version__}


def host_roofline() -> dict:
    """The host's roofline numbers (the fields of ``harness.devices.Roofline``)."""
    path = cache_root() / f"host-roofline-{_key()}.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):    # none yet, or a damaged entry: measure again
        data = calibrate()
        write_atomic(path, json.dumps(data, indent=1))
    src = (f"measured on this host ({path.name}): matmul peaks, copy bandwidth; efficiencies and "
           f"overhead fitted (fp32) to {len(data['fitted_to'])} single conv blocks, rms log error "
           f"{data['fit_rms_log_error']:.2f}")
    return {"peak_gops": data["peak_gops"], "bandwidth_gbs": data["bandwidth_gbs"],
            "compute_eff": data["compute_eff"], "memory_eff": data["memory_eff"],
            "launch_overhead_us": data["launch_overhead_us"],
            "sources": {"peak_gops": src, "bandwidth_gbs": src, "efficiency": src,
                        "launch_overhead_us": src, "file": str(path)}}
