"""The ``lipsync`` family: Wav2Lip-style generators (masked face + reference frame and a
mel window -> face), their data layouts (LRS, video folders, pair lists) and the
generation protocol that turns a variant into videos its quality metrics score."""
from __future__ import annotations

import torch

from ...variants import Family, register_family
from .dataspec import DataSpec
from .protocol import clips_for_cell, variant_key


def frame_inputs(batch_size: int = 1) -> tuple:
    """One video frame as Wav2Lip inference feeds it: mel (B,1,80,16), face (B,6,96,96)."""
    g = torch.Generator().manual_seed(0)
    mel = torch.rand(batch_size, 1, 80, 16, generator=g) * 8 - 4
    face = torch.rand(batch_size, 6, 96, 96, generator=g)
    return mel, face


LIPSYNC = register_family(Family(
    "lipsync", frame_inputs,
    "Wav2Lip-style: masked face + reference frame (6x96x96) and mel window (1x80x16) -> "
    "face (3x96x96), 25 fps",
    sample_type="frames", data_spec=DataSpec.from_suite, produce_samples=clips_for_cell,
    samples_key=variant_key))
