"""``ground-truth``: the row every lip-sync table carries. Its "generator" returns the
unmasked reference face it is given, so the real frames go through the same 96x96 resize,
paste-back and video encoding as every generated frame (see harness.families.lipsync).

``reference-copy``: the same pass-through as an ordinary (not ground-truth) variant, so it
sees the reference the suite's ``data.reference`` rule gives. Under ``first`` its output is
the clip's first frame copied into every frame: the floor a generator must beat. Under the
default ``frame`` rule it reproduces the real frames, like the ground truth."""
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

register_variant("reference-copy", family="lipsync", role="reference",
                 description="floor baseline: the reference face copied (with data.reference 'first', "
                             "the clip's first frame in every frame; with 'frame', the ground truth)",
                 passthrough=True)(
    ReferencePassthrough)
