"""ONNX export and ONNX Runtime sessions (fp32, and int8 in QDQ format, static)."""
from __future__ import annotations

import inspect
import warnings
from importlib.metadata import version
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import BadInput

# ONNX Runtime's CPU provider has no INT8 ConvTranspose kernel: a quantized one would run
# dequantize -> float ConvTranspose -> quantize, slower than float. Such layers stay float.
NO_INT8_KERNEL = {"ConvTranspose": "ONNX Runtime's CPU provider has no INT8 ConvTranspose kernel"}
INT8_OPS = ["Conv", "MatMul", "Gemm"]


def _require():
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as exc:
        raise BadInput(f"backend 'onnxruntime' needs the packages onnx and onnxruntime ({exc}); "
                       "pip install onnx onnxruntime") from None


def input_names(model: nn.Module, n: int) -> list[str]:
    names = list(inspect.signature(model.forward).parameters)[:n]
    return names if len(names) == n else [f"input{i}" for i in range(n)]


def export(model: nn.Module, example: tuple, path: Path) -> list[str]:
    """Export ``model`` (float, eval) to ``path``; returns the input names."""
    _require()
    names = input_names(model, len(example))
    path.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, example, str(path), input_names=names, output_names=["output"],
                          opset_version=17, dynamo=False, do_constant_folding=True,
                          dynamic_axes={n: {0: "batch"} for n in names} | {"output": {0: "batch"}})
    return names


class _Reader:
    def __init__(self, names, batches):
        self._it = iter([{n: t.numpy() for n, t in zip(names, b)} for b in batches])

    def get_next(self):
        return next(self._it, None)


def quantize_int8(fp32_path: Path, out_path: Path, names: list[str], calibration: list[tuple],
                  per_channel: bool, float_layers: list[str], rewritten: list[str] = ()) -> None:
    _require()
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process
    pre = out_path.with_name(out_path.stem + ".pre.onnx")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant_pre_process(str(fp32_path), str(pre), skip_symbolic_shape=True)
        layers = node_layers(pre, rewritten)
        exclude = [node for node, layer in layers.items() if layer in float_layers]
        quantize_static(str(pre), str(out_path), _Reader(names, calibration),
                        quant_format=QuantFormat.QDQ, op_types_to_quantize=INT8_OPS,
                        per_channel=per_channel, weight_type=QuantType.QInt8,
                        activation_type=QuantType.QUInt8, nodes_to_exclude=exclude)
    pre.unlink(missing_ok=True)


def node_layers(path: Path, rewritten: list[str] = ()) -> dict[str, str]:
    """ONNX node name -> the torch layer name it came from (by its weight initializer); a
    sub-pixel layer's Conv maps to the transposed convolution it replaced."""
    from .subpixel import owner
    import onnx
    graph = onnx.load(str(path), load_external_data=False).graph
    inits = {i.name for i in graph.initializer}
    out = {}
    for node in graph.node:
        if node.op_type in ("Conv", "ConvTranspose", "Gemm", "MatMul"):
            for name in node.input[1:2]:
                if name in inits and name.endswith(".weight"):
                    out[node.name] = owner(name[: -len(".weight")], rewritten)
    return out


def plan(fp32_path: Path, int8_path: Path | None, float_layers: list[str],
         rewritten: list[str] = ()) -> list[dict]:
    """Per layer: the precision it runs at in ONNX Runtime and why."""
    import onnx

    from .subpixel import FORM
    layers = node_layers(fp32_path, rewritten)
    quantized_weights = set()
    if int8_path is not None:
        graph = onnx.load(str(int8_path)).graph
        for node in graph.node:
            if node.op_type == "DequantizeLinear":
                quantized_weights.add(node.input[0].removesuffix("_quantized"))
    ops = {n.name: n.op_type for n in onnx.load(str(fp32_path)).graph.node}
    rows = []
    for node, layer in layers.items():
        op = ops[node]
        row = {"layer": layer, "onnx_node": node, "op": op}
        if layer in rewritten:
            row["form"] = FORM
        if int8_path is None:
            row.update(precision="fp32", why="fp32 export")
        elif layer + (".conv.weight" if layer in rewritten else ".weight") in quantized_weights:
            row.update(precision="int8", why="QDQ static, calibrated")
        elif layer in float_layers:
            row.update(precision="fp32", why="kept float by the recipe (float_layers)")
        else:
            row.update(precision="fp32", why=NO_INT8_KERNEL.get(op, f"{op} not quantized"))
        rows.append(row)
    return rows


class OrtModule(nn.Module):
    """An ONNX Runtime session called like the torch model it was exported from."""

    def __init__(self, path: Path, names: list[str], threads: int = 0):
        super().__init__()
        _require()
        self.path, self.names = Path(path), list(names)
        self.threads = -1
        self.set_threads(threads)

    def set_threads(self, threads: int) -> None:
        import onnxruntime as ort
        if threads == self.threads:
            return
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # pool threads spin within a run (ONNX Runtime's default: parking them between its
        # many short parallel sections cost 1.24x on nota-wav2lip fp32) but stop when it
        # returns: spinning after it would take a core from whatever runs next (the
        # interleaved latency rounds time other variants right after this one)
        opts.add_session_config_entry("session.force_spinning_stop", "1")
        self.session = ort.InferenceSession(str(self.path), opts, providers=["CPUExecutionProvider"])
        self.threads = threads

    def forward(self, *inputs):
        feeds = {n: t.detach().float().cpu().numpy() for n, t in zip(self.names, inputs)}
        return torch.from_numpy(np.asarray(self.session.run(None, feeds)[0]))

    def serialized_bytes(self) -> int:
        return self.path.stat().st_size


def runtime() -> str:
    return f"onnxruntime {version('onnxruntime')} (CPUExecutionProvider)"
