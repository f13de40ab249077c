"""PT2E post-training static INT8 (torchao), lowered to oneDNN INT8 kernels by Inductor.

The float model is captured by ``torch.export`` with a dynamic batch dimension, annotated
by torchao's ``X86InductorQuantizer`` (per-channel int8 weights, uint8 activations with
histogram observers), calibrated, converted, and compiled by Inductor with weight
freezing. Compilation is lazy and happens once per input shape and thread count
(Inductor bakes the thread count into its kernels); Inductor's own on-disk cache makes the
next process's compilation shorter. Like ``torch_ao``, this module is the only place that
touches the PT2E API."""
from __future__ import annotations

import contextlib
import copy
import functools
import io
import logging
import warnings
from importlib.metadata import PackageNotFoundError, version
from typing import Iterable

import torch
from torch import nn

from ..errors import BadInput

VERSION = "pt2e-x86-inductor-1"     # part of the cache key: change it when the recipe's meaning changes


def require() -> None:
    """Raise BadInput when torchao or a C++ compiler for Inductor is missing."""
    try:
        with _quiet("torch.utils._pytree"):    # torchao registers an Enum constant on import
            import torchao  # noqa: F401
    except ImportError as exc:
        raise BadInput(f"backend 'pt2e' needs the package torchao ({exc}); it is in requirements.lock, "
                       "or use backend: torch") from None
    try:
        from torch._inductor.cpp_builder import get_cpp_compiler
        get_cpp_compiler()
    except Exception as exc:    # Inductor raises its own error types here
        raise BadInput(f"backend 'pt2e' compiles with Inductor, which needs a C++ compiler "
                       f"(g++ or clang++) on PATH: {exc}") from None


@contextlib.contextmanager
def _quiet(logger: str):
    """Warnings and a torch logger's messages below ERROR silenced (torch's notes to its own
    developers, such as a deprecated registration inside torchao, or "No CUDA runtime is
    found" on a CPU host, are not the user's to act on)."""
    log = logging.getLogger(logger)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        log.setLevel(level)


def _api():
    with _quiet("torch.utils._pytree"):
        from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
        from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq
    return prepare_pt2e, convert_pt2e, xiq


def _export(model: nn.Module, example: tuple) -> nn.Module:
    """The model as an exported graph whose first dimension (the batch) stays dynamic.
    A batch of one would be specialised by export, so the example is doubled."""
    example = tuple(torch.cat([t, t]) if t.shape[0] == 1 else t for t in example)
    batch = torch.export.Dim("batch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.export.export(copy.deepcopy(model).eval(), example,
                                          dynamic_shapes=tuple({0: batch} for _ in example))
        except Exception as exc:   # export raises many types; all mean "cannot be captured"
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise BadInput(f"the model cannot be captured by torch.export for PT2E quantization "
                           f"({type(exc).__name__}: {first}); use backend: torch or onnxruntime") from None
    return program.module()


@functools.lru_cache(maxsize=None)
def reduce_range() -> bool:
    """7-bit activations where the CPU lacks VNNI (torchao's advice: the u8 x s8 products
    of older AVX2 / AVX-512 kernels can saturate)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:     # not Linux: assume a current CPU
        return False
    return "vnni" not in flags


def _prepare(model: nn.Module, example: tuple, float_layers: Iterable[str]) -> nn.Module:
    prepare_pt2e, _, xiq = _api()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config(reduce_range=reduce_range()))
    for name in float_layers:
        quantizer.set_module_name_qconfig(name, None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return prepare_pt2e(_export(model, example), quantizer)


def _observers(prepared: nn.Module) -> dict[str, nn.Module]:
    return {name: mod for name, mod in prepared.named_children()
            if name.startswith("activation_post_process")}


def _qparams(prepared: nn.Module) -> dict[str, torch.Tensor]:
    """Each observer's (scale, zero point), computed once: the histogram observers' search
    costs about a second each, and convert would otherwise repeat it."""
    out = {}
    for name, obs in _observers(prepared).items():
        scale, zero_point = obs.calculate_qparams()
        out[f"{name}.scale"], out[f"{name}.zero_point"] = scale.detach().clone(), zero_point.detach().clone()
    return out


def _convert(prepared: nn.Module, qparams: dict[str, torch.Tensor]) -> "PT2EModule":
    """Convert with the given qparams: each observer reports them instead of computing."""
    _, convert_pt2e, _ = _api()
    observers = _observers(prepared)
    names = {k.rsplit(".", 1)[0] for k in qparams}
    if names != set(observers) or len(qparams) != 2 * len(names):
        raise ValueError(f"quantization parameters do not fit the graph: "
                         f"{sorted(names ^ set(observers))[:3]}")
    for name, obs in observers.items():
        fixed = (qparams[f"{name}.scale"], qparams[f"{name}.zero_point"])
        obs.calculate_qparams = lambda fixed=fixed: fixed
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return PT2EModule(convert_pt2e(prepared))


def make(model: nn.Module, calibration: list[tuple], recipe, float_layers: Iterable[str]):
    """The backend interface shared with ``torch_ao``: (quantized model, cacheable state)."""
    return quantize(model, calibration, float_layers)


def load(model: nn.Module, example: tuple, state: dict, recipe, float_layers: Iterable[str]):
    return rebuild(model, example, state, float_layers)


def quantize(model: nn.Module, calibration: list[tuple],
             float_layers: Iterable[str] = ()) -> tuple["PT2EModule", dict]:
    """The INT8 model (float in, float out) and its quantization parameters, which with
    the same float model and ``float_layers`` rebuild it exactly (``rebuild``)."""
    require()
    prepared = _prepare(model, calibration[0], list(float_layers))
    with torch.no_grad():
        for batch in calibration:
            prepared(*batch)
    qparams = _qparams(prepared)
    return _convert(prepared, qparams), qparams


def rebuild(model: nn.Module, example: tuple, qparams: dict, float_layers: Iterable[str]) -> "PT2EModule":
    """The quantized model from cached quantization parameters (same float model, same layers)."""
    require()
    return _convert(_prepare(model, example, list(float_layers)), qparams)


class PT2EModule(nn.Module):
    """A converted PT2E graph, compiled by Inductor (``torch._inductor.compile``, weights
    frozen) on first call for each thread count and input signature (shapes, dtypes,
    devices).
    The compiled code is called directly: the signature check here replaces Dynamo's
    guards, and Inductor's debugging size asserts are left out of the generated code
    (measured: 0.2 to 0.3 ms a call on a 2 ms model)."""

    def __init__(self, graph: nn.Module):
        super().__init__()
        self.graph = graph
        self._compiled: dict[tuple, object] = {}

    def forward(self, *inputs):
        inputs = tuple(t.contiguous() for t in inputs)
        key = (torch.get_num_threads(),) + tuple((tuple(t.shape), t.dtype, t.device) for t in inputs)
        fn = self._compiled.get(key)
        if fn is None:
            fn = self._compiled[key] = _compile(self.graph, inputs)
        with torch.no_grad():
            return fn(*inputs)

    def serialized_bytes(self) -> int:
        """Bytes of ``torch.save`` of the graph's constants (int8 weights, scales, biases)."""
        tensors = {}
        for node in self.graph.graph.nodes:
            if node.op == "get_attr":
                value = self.graph
                for part in node.target.split("."):
                    value = getattr(value, part)
                if isinstance(value, torch.Tensor):
                    tensors[node.target] = value
        buf = io.BytesIO()
        torch.save(tensors, buf)
        return buf.getbuffer().nbytes


def _compile(graph: nn.Module, inputs: tuple):
    """Inductor's code for ``graph`` at these inputs (a copy of the graph: freezing folds
    its weights into constants)."""
    import torch._inductor.config as inductor_config
    with _quiet("torch.utils.cpp_extension"), torch.no_grad(), inductor_config.patch(
            freezing=True, size_asserts=False, alignment_asserts=False):
        return torch._inductor.compile(copy.deepcopy(graph), list(inputs))


def runtime(recipe=None) -> str:
    try:
        tao = version("torchao")
    except PackageNotFoundError:
        tao = "missing"
    bits = ", 7-bit activations (no VNNI)" if reduce_range() else ""
    return f"torch {torch.__version__} int8 (torchao {tao} PT2E, X86InductorQuantizer{bits}, Inductor)"
