"""``ground-truth``: the row every lip-sync table carries. Its "generator" returns the
unmasked reference face it is given, so the real frames go through the same 96x96 resize,
paste-back and video encoding as every generated frame (see harness.families.lipsync)."""
from __future__ import annotations

import torch
from torch import nn

from harness import register_variant


class ReferencePassthrough(nn.Module):
    """Returns channels 3..5 of the face input: the unmasked reference face."""

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        return face_sequences[:, 3:6]


register_variant("ground-truth", family="lipsync", role="reference",
                 description="the real frames through the same generation path (no model)",
                 ground_truth=True)(ReferencePassthrough)
