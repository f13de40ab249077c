"""Wav2Lip's building blocks. Attribute names (conv_block, act) match the official
definitions so that official state dicts load unchanged."""
from torch import nn


class Conv2d(nn.Module):
    """Conv -> BatchNorm -> (+ input if residual) -> ReLU."""

    def __init__(self, cin, cout, kernel_size, stride, padding, residual=False):
        super().__init__()
        self.conv_block = nn.Sequential(nn.Conv2d(cin, cout, kernel_size, stride, padding),
                                        nn.BatchNorm2d(cout))
        self.act = nn.ReLU()
        self.residual = residual

    def forward(self, x):
        out = self.conv_block(x)
        return self.act(out + x if self.residual else out)


class Conv2dTranspose(nn.Module):
    """ConvTranspose -> BatchNorm -> ReLU."""

    def __init__(self, cin, cout, kernel_size, stride, padding, output_padding=0):
        super().__init__()
        self.conv_block = nn.Sequential(
            nn.ConvTranspose2d(cin, cout, kernel_size, stride, padding, output_padding),
            nn.BatchNorm2d(cout))
        self.act = nn.ReLU()

    def forward(self, x):
        return self.act(self.conv_block(x))


def stage(cin, cout, kernel, stride, padding, n_residual):
    """One strided (or not) block followed by n residual 3x3 blocks at cout."""
    layers = [Conv2d(cin, cout, kernel, stride, padding)]
    layers += [Conv2d(cout, cout, 3, 1, 1, residual=True) for _ in range(n_residual)]
    return layers
