"""Sub-pixel rewrite: a transposed convolution as a convolution followed by PixelShuffle.

A ConvTranspose2d with stride s computes each of the s x s output phases (output rows and
columns with a given remainder mod s) as an ordinary correlation of the input with a
subset of its kernel taps. Stacking the phases as s*s groups of output channels gives one
Conv2d on the input grid; PixelShuffle(s) interleaves the groups back into the output.
The result is exact up to float rounding, and INT8 backends that have fast Conv2d
kernels but slow or no INT8 ConvTranspose (torch.ao's x86 engine, ONNX Runtime's CPU
provider) then run those layers in INT8.

Per spatial dimension (kernel k, stride s, padding p, output padding op, input length H):
output o = s*m + r takes x[m + d] * w[r + p - s*d] for every offset d with
0 <= r + p - s*d < k. The offsets over all phases span [ceil((p-k+1)/s), floor((s-1+p)/s)],
which sets the Conv2d kernel size and its (possibly one-sided) padding; one-sided padding
is done as symmetric padding followed by a crop (torch.narrow) of the convolution's
output, which torch.ao keeps quantized and ONNX exports as a Slice."""
from __future__ import annotations

import math

import torch
from torch import nn


VERSION = 2  # bump when the rewritten graph changes (quantized caches are keyed on it)
FORM = "sub-pixel: Conv2d + PixelShuffle (exact rewrite of ConvTranspose2d)"


def owner(layer: str, rewritten) -> str:
    """The plan layer a parameter path's module belongs to (a sub-pixel layer's inner conv
    belongs to the layer it replaced)."""
    base = layer.removesuffix(".conv")
    return base if base != layer and base in rewritten else layer


class SubPixelConvTranspose2d(nn.Module):
    """Drop-in replacement of a ConvTranspose2d (same input and output shapes and values)."""

    def __init__(self, conv: nn.Conv2d, stride: int, trim: tuple, out_trim: tuple):
        super().__init__()
        self.conv = conv
        self.shuffle = nn.PixelShuffle(stride)
        self.trim = trim          # (top, bottom, left, right) rows/columns of the conv output to drop
        self.out_trim = out_trim  # (bottom, right) of the shuffled output (a partial last phase)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # torch.narrow, unlike slicing, keeps a quantized tensor quantized in torch.ao
        y = self.conv(x)
        top, bottom, left, right = self.trim
        if top or bottom:
            y = torch.narrow(y, 2, top, y.shape[2] - top - bottom)
        if left or right:
            y = torch.narrow(y, 3, left, y.shape[3] - left - right)
        y = self.shuffle(y)
        if self.out_trim[0]:
            y = torch.narrow(y, 2, 0, y.shape[2] - self.out_trim[0])
        if self.out_trim[1]:
            y = torch.narrow(y, 3, 0, y.shape[3] - self.out_trim[1])
        return y


def _axis(k: int, s: int, p: int, op: int):
    """(first offset, kernel size, padding, trim before, trim after, output trim) along one
    dimension; none depends on the input size."""
    d_min = math.ceil((p - k + 1) / s)
    size = (s - 1 + p) // s - d_min + 1
    left = -d_min
    # phases needed minus input length: ceil(h_out / s) - h, the same for every h
    extra = math.ceil((k + op - 2 * p - s) / s)
    right = extra + size - 1 - left
    pad = max(left, right)
    out_trim = (-(k + op - 2 * p - s)) % s
    return d_min, size, pad, pad - left, pad - right, out_trim


def supported(mod: nn.Module) -> bool:
    return (isinstance(mod, nn.ConvTranspose2d) and mod.groups == 1 and mod.dilation == (1, 1)
            and mod.stride[0] == mod.stride[1] and mod.padding_mode == "zeros"
            and all(p <= k - 1 for p, k in zip(mod.padding, mod.kernel_size)))


def from_transposed(mod: nn.ConvTranspose2d) -> SubPixelConvTranspose2d:
    """The sub-pixel form of ``mod``: the same function for every input size."""
    s = mod.stride[0]
    (dy, ky, py, ty0, ty1, oy), (dx, kx, px, tx0, tx1, ox) = [
        _axis(k, s, p, op) for k, p, op in zip(mod.kernel_size, mod.padding, mod.output_padding)]
    cin, cout = mod.in_channels, mod.out_channels
    conv = nn.Conv2d(cin, cout * s * s, (ky, kx), 1, (py, px), bias=mod.bias is not None)
    w = mod.weight.detach()  # (cin, cout, kH, kW)
    new = torch.zeros(cout, s, s, cin, ky, kx, dtype=w.dtype)
    for r_y in range(s):
        for t_y in range(ky):
            a = r_y + mod.padding[0] - s * (t_y + dy)
            if not 0 <= a < mod.kernel_size[0]:
                continue
            for r_x in range(s):
                for t_x in range(kx):
                    b = r_x + mod.padding[1] - s * (t_x + dx)
                    if 0 <= b < mod.kernel_size[1]:
                        new[:, r_y, r_x, :, t_y, t_x] = w[:, :, a, b].t()
    with torch.no_grad():
        conv.weight.copy_(new.reshape(cout * s * s, cin, ky, kx))
        if mod.bias is not None:
            conv.bias.copy_(mod.bias.detach().repeat_interleave(s * s))
    return SubPixelConvTranspose2d(conv.train(mod.training), s, (ty0, ty1, tx0, tx1), (oy, ox))


def rewrite(model: nn.Module) -> list[str]:
    """Replace every supported ConvTranspose2d of ``model`` in place; returns the names of
    the replaced layers (module names do not change)."""
    names = [n for n, m in model.named_modules() if supported(m)]
    for name in names:
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, from_transposed(getattr(parent, child)))
    return names
