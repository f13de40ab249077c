"""``latency_ms_remote``: latency measured by ONNX Runtime on another device (over SSH,
or a local folder standing in for one; see harness.remote_device)."""
from __future__ import annotations

import torch

from ..errors import BadInput
from ..profiling.latency import summarize
from .base import Cell, Result, register_metric
from .options import Option


def _onnx_of(cell: Cell):
    """(path, input names) of the ONNX model that runs this variant, or None."""
    from ..quantize import onnxrt
    model = cell.model()
    if isinstance(model, onnxrt.OrtModule):
        return model.path, model.names
    if cell.variant.precision != "fp32" or cell.variant.recipe is not None:
        return None
    inputs = cell.variant.inputs(int(cell.options["batch_size"]), dtype=torch.float32)
    path = cell.run_dir / "remote" / cell.variant.name / "model.fp32.onnx"
    names = onnxrt.export(cell.float_model(), inputs, path)
    return path, names


@register_metric("latency_ms_remote", direction="lower", unit="ms", display_unit="ms",
                 options={"target": "", "device": "", "python": "python3", "threads": 0,
                          "warmup": 5, "runs": 30, "batch_size": 1},
                 # threads 0: ONNX Runtime's default; device: a device profile's name
                 schema={"threads": Option("int", 0, 1024), "device": Option("str")},
                 description="latency measured by ONNX Runtime on a remote device "
                             "(target ssh://[user@]host[:port][/dir] or local:DIR)")
def latency_ms_remote(cell: Cell) -> Result:
    from ..devices import devices
    from ..remote_device import remote_latency
    o = cell.options
    if not o["target"]:
        raise BadInput("latency_ms_remote needs options.target (ssh://[user@]host[:port][/dir] or local:DIR)")
    label = devices.get(o["device"]).description if o["device"] else o["target"]
    found = _onnx_of(cell)
    if found is None:
        return Result(None, reason=f"{cell.variant.name}: the remote runner runs ONNX models; "
                                   "declare it with quantize: {backend: onnxruntime, ...}")
    path, names = found
    batch = int(o["batch_size"])
    out = remote_latency(path, names, cell.variant.inputs(batch, dtype=torch.float32), o["target"],
                         o["python"], int(o["threads"]), int(o["warmup"]), int(o["runs"]),
                         cell.run_dir / "remote" / cell.variant.name)
    stats = summarize(out["times_ms"], batch)
    return Result(stats.median_ms, n=stats.n, stats=stats.as_dict(),
                  backend=f"onnxruntime {out.get('onnxruntime')} on the device "
                          f"({', '.join(out.get('providers', [])[:1])})",
                  settings={"target": out["target"], "device": o["device"] or None, "threads": o["threads"],
                            "warmup": o["warmup"], "runs": o["runs"], "batch_size": batch},
                  measured_on=(f"{o['device']}: {label}" if o["device"] else label) + f" via {out['target']}")
