"""Calibration inputs. Suites without data calibrate on a stand-in that the records name,
so a quantized variant's quality is never claimed from it."""
from __future__ import annotations

import hashlib

import torch


def stand_in_batches(variant, batches: int, batch_size: int, seed: int) -> list[tuple]:
    """Uniform noise spanning each example input's value range, ``batches`` batches."""
    example = tuple(t.float() if t.is_floating_point() else t for t in variant.inputs(batch_size))
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(batches):
        batch = []
        for t in example:
            if t.is_floating_point():
                lo, hi = float(t.min()), float(t.max())
                batch.append(torch.rand(t.shape, generator=g) * (hi - lo) + lo)
            else:
                batch.append(t.clone())
        out.append(tuple(batch))
    return out


def batches_sha256(batches: list[tuple]) -> str:
    h = hashlib.sha256()
    for batch in batches:
        for t in batch:
            h.update(str(tuple(t.shape)).encode())
            h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()


def describe_stand_in(recipe_cal, sha: str) -> dict:
    return {"source": "stand-in", "kind": "synthetic: uniform noise in the example inputs' range",
            "batches": recipe_cal.batches, "batch_size": recipe_cal.batch_size,
            "seed": recipe_cal.seed, "sha256": sha,
            "quality_claim": False,
            "note": "the suite has no data to calibrate on; output error is measured against the "
                    "float model on held-out stand-in inputs, not on real frames"}
