"""Wav2Lip's visual quality discriminator (``Wav2Lip_disc_qual``, the HQ recipe): plain
convolutions with LeakyReLU 0.01 (no normalisation) on the lower half of each generated
frame, a 1x1 convolution and a sigmoid: the probability that the frame is real.
14,113,793 parameters; module names equal the official definition, so its checkpoints
load unchanged. Used in training only (recipe field ``disc``), never as a metric."""
import torch
from torch import nn

from harness import register_variant


class NoNormConv2d(nn.Module):
    """Conv -> LeakyReLU(0.01) (the official ``nonorm_Conv2d``)."""

    def __init__(self, cin, cout, kernel_size, stride, padding):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding))
        self.act = nn.LeakyReLU(0.01, inplace=True)

    def forward(self, x):
        return self.act(self.conv_block(x))


# per block: (cout, kernel, stride, padding) of its convolutions; 48x96 -> 1x1
BLOCKS = [[(32, 7, 1, 3)],
          [(64, 5, (1, 2), 2), (64, 5, 1, 2)],
          [(128, 5, 2, 2), (128, 5, 1, 2)],
          [(256, 5, 2, 2), (256, 5, 1, 2)],
          [(512, 3, 2, 1), (512, 3, 1, 1)],
          [(512, 3, 2, 1), (512, 3, 1, 1)],
          [(512, 3, 1, 0), (512, 1, 1, 0)]]


class Wav2LipDiscQual(nn.Module):
    def __init__(self):
        super().__init__()
        blocks, cin = [], 3
        for spec in BLOCKS:
            layers = []
            for cout, k, s, p in spec:
                layers.append(NoNormConv2d(cin, cout, k, s, p))
                cin = cout
            blocks.append(nn.Sequential(*layers))
        self.face_encoder_blocks = nn.ModuleList(blocks)
        self.binary_pred = nn.Sequential(nn.Conv2d(512, 1, 1, 1, 0), nn.Sigmoid())

    def forward(self, faces: torch.Tensor) -> torch.Tensor:
        """(B, 3, T, H, W) windows (flattened time-major, as the official ``to_2d``) or
        (N, 3, H, W) frames -> (N, 1) probabilities of 'real', from the lower halves."""
        if faces.dim() == 5:
            faces = torch.cat([faces[:, :, i] for i in range(faces.size(2))], dim=0)
        x = faces[:, :, faces.size(2) // 2:]
        for block in self.face_encoder_blocks:
            x = block(x)
        return self.binary_pred(x).view(len(x), -1)


def disc_inputs(batch_size: int = 1) -> tuple:
    g = torch.Generator().manual_seed(0)
    return (torch.rand(batch_size, 3, 96, 96, generator=g),)


register_variant("wav2lip-disc-qual", family="lipsync", role="reference", example_inputs=disc_inputs,
                 description="Wav2Lip HQ visual quality discriminator (training only)")(Wav2LipDiscQual)
