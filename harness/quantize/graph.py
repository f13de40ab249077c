"""Graph helpers shared by the quantization backends."""
from __future__ import annotations

import difflib

from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval

from ..errors import BadInput

QUANTIZABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d,
               nn.ConvTranspose3d, nn.Linear)


def fold_batchnorm(model: nn.Module) -> int:
    """Fold each eval-mode BatchNorm that directly follows a convolution inside an
    ``nn.Sequential`` into that convolution (exact up to float rounding); the BatchNorm
    becomes an Identity so module names do not move. Returns how many were folded."""
    folded = 0
    for mod in model.modules():
        if not isinstance(mod, nn.Sequential):
            continue
        for i in range(len(mod) - 1):
            conv, bn = mod[i], mod[i + 1]
            if isinstance(conv, QUANTIZABLE[:6]) and isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d,
                                                                      nn.BatchNorm3d)):
                mod[i] = fuse_conv_bn_eval(conv.eval(), bn.eval(),
                                           transpose=isinstance(conv, nn.modules.conv._ConvTransposeNd))
                mod[i + 1] = nn.Identity()
                folded += 1
    return folded


def quantizable_layers(model: nn.Module) -> dict[str, str]:
    """Names of the layers a quantization plan speaks about, with their type, in order. A
    transposed convolution rewritten in sub-pixel form keeps its name and its kind."""
    from .subpixel import SubPixelConvTranspose2d
    out, inside = {}, ()
    for n, m in model.named_modules():
        if inside and n.startswith(inside):
            continue
        if isinstance(m, SubPixelConvTranspose2d):
            out[n], inside = "ConvTranspose2d", n + "."
        elif isinstance(m, QUANTIZABLE):
            out[n] = type(m).__name__
    return out


def weight_layer(mod: nn.Module) -> nn.Module:
    """The module holding the weight of a plan layer (a sub-pixel layer's convolution)."""
    from .subpixel import SubPixelConvTranspose2d
    return mod.conv if isinstance(mod, SubPixelConvTranspose2d) else mod


def check_layer_names(names: list[str], model: nn.Module, where: str) -> None:
    known = quantizable_layers(model)
    for name in names:
        if name not in known:
            close = difflib.get_close_matches(name, list(known), n=3, cutoff=0.5)
            hint = f"; did you mean {', '.join(map(repr, close))}?" if close else ""
            raise BadInput(f"{where}: float_layers names '{name}', which is not a quantizable layer "
                           f"of this model{hint} (`avatarbench profile VARIANT --explain` lists them)")
