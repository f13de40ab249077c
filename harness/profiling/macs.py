"""MAC counting. One fused multiply-add = 1 MAC.

Two conventions, because tools disagree on transposed convolutions:
- ``ptflops`` (aten backend by default): counts the work a transposed convolution really
  does, input elements x out_channels x kernel. Wav2Lip: 3.97 G per 96x96 frame.
- ``outres``: every convolution, transposed or not, costs output elements x
  (in_channels / groups) x kernel, i.e. a transposed convolution is counted as if it
  were a convolution at output resolution (thop's habit). Wav2Lip: 6.20 G, the
  convention behind the "28x fewer MACs" claim. Norms, activations and the like count 0.
"""
from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import torch
from torch import nn

from ..errors import BadInput


@dataclass
class LayerCount:
    name: str
    kind: str
    macs: int
    params: int
    in_shape: tuple
    out_shape: tuple


def _call_kwargs(model: nn.Module, inputs: tuple) -> dict:
    import inspect
    names = [p for p in inspect.signature(model.forward).parameters]
    if len(names) < len(inputs):
        raise BadInput(f"{type(model).__name__}.forward takes {len(names)} inputs, "
                       f"example inputs have {len(inputs)}")
    return dict(zip(names, inputs))


def ptflops_macs(model: nn.Module, inputs: tuple, backend: str = "aten") -> tuple[int, str]:
    """Total MACs by ptflops and its per-module report text."""
    from ptflops import get_model_complexity_info
    if backend not in ("aten", "pytorch"):
        raise BadInput(f"ptflops backend '{backend}' is not one of aten, pytorch")
    report = io.StringIO()
    kwargs = _call_kwargs(model, inputs)
    noise = io.StringIO()
    with contextlib.redirect_stdout(noise), torch.no_grad():
        macs, _ = get_model_complexity_info(
            model, (1,), input_constructor=lambda _res: kwargs, as_strings=False,
            print_per_layer_stat=True, ost=report, verbose=False, backend=backend)
    if not macs:
        raise RuntimeError(f"ptflops ({backend}) could not count this model: {noise.getvalue()[-500:]}")
    return int(macs), report.getvalue()


def outres_layers(model: nn.Module, inputs: tuple) -> list[LayerCount]:
    """Per-layer MACs in the output-resolution convention, in call order."""
    names = {m: n for n, m in model.named_modules()}
    rows: list[LayerCount] = []

    def hook(mod, args, out):
        if not isinstance(mod, (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d,
                                nn.ConvTranspose2d, nn.ConvTranspose3d, nn.Linear)):
            return
        if isinstance(mod, nn.Linear):
            macs = out.numel() * mod.in_features
        else:
            k = 1
            for s in mod.kernel_size:
                k *= s
            macs = out.numel() * (mod.in_channels // mod.groups) * k
        rows.append(LayerCount(names.get(mod, "?"), type(mod).__name__, int(macs),
                               sum(p.numel() for p in mod.parameters(recurse=False)),
                               tuple(args[0].shape), tuple(out.shape)))

    forward_with_hooks(model, inputs, hook, model.modules())
    return rows


def forward_with_hooks(model, inputs, hook, modules) -> None:
    """One inference call of ``model`` with ``hook`` on ``modules``, removed afterwards."""
    handles = [m.register_forward_hook(hook) for m in modules]
    try:
        with torch.inference_mode():
            model(*inputs)
    finally:
        for h in handles:
            h.remove()


def layers_csv(rows: list[LayerCount]) -> str:
    lines = ["layer,type,macs,params,in_shape,out_shape"]
    for r in rows:
        lines.append(f"{r.name},{r.kind},{r.macs},{r.params},"
                     f"\"{'x'.join(map(str, r.in_shape))}\",\"{'x'.join(map(str, r.out_shape))}\"")
    return "\n".join(lines) + "\n"
