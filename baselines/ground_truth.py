"""``ground-truth``: the row every lip-sync table carries. Its "generator" returns the
unmasked reference face it is given, so the real frames go through the same 96x96 resize,
paste-back and video encoding as every generated frame (see harness.families.lipsync).

``reference-copy``: the floor a generator must beat. It keeps the visible upper half of the
target face (the masked input) and copies the lower half of the reference face, so it
sees the reference the suite's ``data.reference`` rule gives. Under ``first`` every frame
gets the clip's first mouth; under the default ``frame`` rule it reproduces the real
frames, like the ground truth."""
from __future__ import annotations

import torch
from torch import nn

from harness import register_variant


class ReferencePassthrough(nn.Module):
    """Returns channels 3..5 of the face input: the unmasked reference face."""

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        return face_sequences[:, 3:6]


class LowerHalfCopy(nn.Module):
    """The masked target's upper half (channels 0..2) over the reference's lower half (3..5)."""

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor) -> torch.Tensor:
        half = face_sequences.shape[-2] // 2
        upper = face_sequences[:, 0:3, ..., :half, :]
        lower = face_sequences[:, 3:6, ..., half:, :]
        return torch.cat([upper, lower], dim=-2)


register_variant("ground-truth", family="lipsync", role="reference",
                 description="the real frames through the same generation path (no model)",
                 ground_truth=True)(ReferencePassthrough)

register_variant("reference-copy", family="lipsync", role="reference",
                 description="floor baseline: the target's upper half over the reference's lower half "
                             "(with data.reference 'first', the clip's first mouth in every frame; "
                             "with 'frame', the ground truth)",
                 passthrough=True)(LowerHalfCopy)
