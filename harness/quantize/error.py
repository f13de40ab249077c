"""Output error of a quantized model against its float parent."""
from __future__ import annotations

import math

import torch


def output_error(reference, candidate, batches: list[tuple]) -> dict:
    """MSE, PSNR (peak 1, the generators' sigmoid range), SQNR and max |diff| over batches."""
    se, n, peak, signal = 0.0, 0, 0.0, 0.0
    with torch.inference_mode():
        for batch in batches:
            ref = reference(*batch).float()
            out = candidate(*batch).float()
            if out.shape != ref.shape:
                raise ValueError(f"output shape {tuple(out.shape)} differs from the float model's "
                                 f"{tuple(ref.shape)}")
            d = out - ref
            se += float((d * d).sum())
            signal += float(((ref - ref.mean()) ** 2).sum())
            n += d.numel()
            peak = max(peak, float(d.abs().max()))
    mse = se / max(n, 1)
    return {"mse": mse, "psnr_db": 10 * math.log10(1.0 / mse) if mse > 0 else math.inf,
            "sqnr_db": 10 * math.log10(signal / se) if se > 0 else math.inf,
            "max_abs": peak, "n_values": n}
