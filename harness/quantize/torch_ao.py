"""PyTorch post-training static INT8 quantization, behind one small adapter.

torch.ao's FX graph mode is deprecated in favour of torchao (PT2E), which on this
release leaves ConvTranspose in float; everything that touches torch.ao lives here so
the backend can be swapped without touching recipes, plans or the runner."""
from __future__ import annotations

import copy
import warnings
from typing import Iterable

import torch
from torch import nn

from ..errors import BadInput

ENGINES = ("x86", "fbgemm", "qnnpack", "onednn")


def _api():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from torch.ao.quantization import QConfigMapping, get_default_qconfig, get_default_qconfig_mapping
        from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx
    return QConfigMapping, get_default_qconfig, get_default_qconfig_mapping, prepare_fx, convert_fx


def check_engine(engine: str) -> None:
    if engine not in ENGINES:
        raise BadInput(f"quantize.engine '{engine}' is not one of {', '.join(ENGINES)}")
    if engine not in torch.backends.quantized.supported_engines:
        raise BadInput(f"quantize.engine '{engine}' is not supported by this torch build "
                       f"(supported: {', '.join(torch.backends.quantized.supported_engines)})")


def _mapping(engine: str, per_channel: bool, float_layers: Iterable[str]):
    QConfigMapping, get_default_qconfig, get_default_qconfig_mapping, *_ = _api()
    if per_channel:
        qmap = get_default_qconfig_mapping(engine)
    else:
        qmap = QConfigMapping().set_global(get_default_qconfig(engine))
    for name in float_layers:
        qmap.set_module_name(name, None)
    # A quantized sigmoid has a fixed 1/256 output scale: it would round every output
    # frame to 8 bits and mis-quantize its input when the layer before stays float.
    qmap.set_object_type(nn.Sigmoid, None).set_object_type(torch.sigmoid, None)
    return qmap


def _prepare(model: nn.Module, example: tuple, engine: str, per_channel: bool,
             float_layers: Iterable[str]) -> nn.Module:
    *_, prepare_fx, _ = _api()
    torch.backends.quantized.engine = engine
    qmap = _mapping(engine, per_channel, float_layers)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return prepare_fx(copy.deepcopy(model).eval(), qmap, example_inputs=example)
        except torch.fx.proxy.TraceError as exc:
            raise BadInput(f"the model cannot be traced by torch.fx for quantization: {exc}. "
                           "Shape-dependent branches must sit in functions marked torch.fx.wrap "
                           "(see baselines/wav2lip.py)") from None


def _convert(prepared: nn.Module) -> nn.Module:
    *_, convert_fx = _api()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return convert_fx(prepared)


def quantize(model: nn.Module, calibration: list[tuple], engine: str = "x86", per_channel: bool = True,
             float_layers: Iterable[str] = ()) -> nn.Module:
    """Calibrate observers on ``calibration`` and convert to an INT8 model that takes and
    returns float tensors like ``model`` does."""
    check_engine(engine)
    prepared = _prepare(model, calibration[0], engine, per_channel, list(float_layers))
    with torch.inference_mode():
        for batch in calibration:
            prepared(*batch)
    return _convert(prepared)


def rebuild(model: nn.Module, example: tuple, state: dict, engine: str, per_channel: bool,
            float_layers: Iterable[str]) -> nn.Module:
    """The quantized model from a cached state dict (same float model, same recipe)."""
    check_engine(engine)
    prepared = _prepare(model, example, engine, per_channel, list(float_layers))
    with torch.inference_mode():
        prepared(*example)  # observers need one pass before convert; the state dict overwrites them
    quantized = _convert(prepared)
    quantized.load_state_dict(state)
    return quantized


def make(model: nn.Module, calibration: list[tuple], recipe, float_layers: Iterable[str]):
    """The backend interface shared with ``pt2e``: (quantized model, cacheable state)."""
    qmodel = quantize(model, calibration, recipe.engine, recipe.per_channel, float_layers)
    return qmodel, qmodel.state_dict()


def load(model: nn.Module, example: tuple, state: dict, recipe, float_layers: Iterable[str]):
    return rebuild(model, example, state, recipe.engine, recipe.per_channel, float_layers)


def runtime(recipe) -> str:
    return f"torch {torch.__version__} int8 (torch.ao FX, {recipe.engine} engine)"


# quantized::cat warns on every call when its inputs' scales differ; it requantizes them
# correctly, and the output error is measured and recorded anyway.
warnings.filterwarnings("ignore", message="All inputs of this cat operator")
