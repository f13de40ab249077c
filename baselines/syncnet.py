"""Wav2Lip's expert lip-sync discriminator (SyncNet_color): lower halves of 5 frames
(15x48x96) and a mel window (1x80x16) -> two L2-normalised 512-d embeddings.
16,435,072 parameters; module names equal the official definition."""
import torch
from torch import nn
from torch.nn import functional as F

from harness import register_variant

from .blocks import stage

# (cout, kernel, stride, padding, residual blocks)
FACE = [(32, 7, 1, 3, 0), (64, 5, (1, 2), 1, 2), (128, 3, 2, 1, 3), (256, 3, 2, 1, 2),
        (512, 3, 2, 1, 2), (512, 3, 2, 1, 0), (512, 3, 1, 0, 0), (512, 1, 1, 0, 0)]
AUDIO = [(32, 3, 1, 1, 2), (64, 3, (3, 1), 1, 2), (128, 3, 3, 1, 2), (256, 3, (3, 2), 1, 2),
         (512, 3, 1, 0, 0), (512, 1, 1, 0, 0)]


def _encoder(cin, spec):
    layers = []
    for cout, k, s, p, n in spec:
        layers += stage(cin, cout, k, s, p, n)
        cin = cout
    return nn.Sequential(*layers)


class SyncNetColor(nn.Module):
    def __init__(self):
        super().__init__()
        self.face_encoder = _encoder(15, FACE)
        self.audio_encoder = _encoder(1, AUDIO)

    def forward(self, audio_sequences: torch.Tensor, face_sequences: torch.Tensor):
        face = self.face_encoder(face_sequences).flatten(1)
        audio = self.audio_encoder(audio_sequences).flatten(1)
        return F.normalize(audio, p=2, dim=1), F.normalize(face, p=2, dim=1)


def expert_inputs(batch_size: int = 1) -> tuple:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(batch_size, 1, 80, 16, generator=g) * 8 - 4,
            torch.rand(batch_size, 15, 48, 96, generator=g))


register_variant("wav2lip-syncnet", family="lipsync", role="reference", example_inputs=expert_inputs,
                 description="Wav2Lip expert lip-sync discriminator (SyncNet_color)")(SyncNetColor)
