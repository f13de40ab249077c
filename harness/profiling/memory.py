"""Peak memory of building a variant and running one forward pass.

CUDA: the caching allocator's peak (``max_memory_allocated``) during build + forward.
CPU: the allocator gives no peak, so a fresh Python process builds the model at its
precision (a quantized one from the same cache a run uses) once and drops it, so the
code and one-time state that making a model loads are not counted; then it makes it
again, hands the memory that building freed back to the system (malloc_trim), resets its
peak resident set (/proc/self/clear_refs) and runs one forward; the value is that peak
(VmHWM) minus the resident set before the second build: the model as it is held plus the
forward pass's activations and workspace. Weights use random initialisation: sizes, not
values, matter."""
from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import torch


def _status_kb(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _trim() -> None:
    """Hand memory freed after building (a float copy, quantization's work) back to the
    system, so the resident set is what the model holds, not what making it left."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


def peak_cuda_mb(variant, batch_size: int, device: str) -> float:
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    from ..derive import materialize
    model = materialize(variant, device).model
    with torch.inference_mode():
        model(*variant.inputs(batch_size, device))
    torch.cuda.synchronize(device)
    peak = torch.cuda.max_memory_allocated(device) - before
    del model
    torch.cuda.empty_cache()
    return peak / 1e6


def peak_cpu_mb(variant_name: str, batch_size: int, plugins: list[str], recipe: dict | None = None,
                seed: int = 0) -> float:
    """``recipe``: the variant is ``variant_name`` quantized by it (same cache, same seed)."""
    cmd = [sys.executable, "-m", "harness.profiling.memory", "--variant", variant_name,
           "--batch-size", str(batch_size), "--seed", str(seed)]
    if recipe:
        cmd += ["--recipe", json.dumps(recipe)]
    for p in plugins:
        cmd += ["--plugin", p]
    # the probe imports this very harness: started in the folder that holds it, with that
    # folder first on its path, so a 'harness' package in the user's working folder is
    # never the one imported
    home = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [home, os.environ.get("PYTHONPATH")]))}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, cwd=home, env=env)
    if proc.returncode != 0:
        raise RuntimeError(f"memory probe for {variant_name} failed: {proc.stderr.strip()[-800:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])["peak_mb"]


def _child(argv: list[str]) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", required=True)
    ap.add_argument("--batch-size", type=int, default=1)
    ap.add_argument("--plugin", action="append", default=[])
    ap.add_argument("--recipe")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    from ..derive import get_variant, materialize, quantized_variant
    from ..registry import load_plugin
    for p in args.plugin:
        load_plugin(p)
    variant = get_variant(args.variant)
    if args.recipe and variant.recipe is None:  # NAME@int8 is quantized already
        variant = quantized_variant(variant, json.loads(args.recipe))
    torch.set_num_threads(torch.get_num_threads())
    if not _reset_peak() or _status_kb("VmRSS") is None:
        raise SystemExit("peak memory on CPU needs Linux /proc (VmHWM and clear_refs)")
    # made and called once and dropped first, so the modules and one-time state that making
    # and first running a model loads (torch.ao's FX machinery, ONNX Runtime, Inductor's
    # compiler for PT2E) are not counted as the model's memory
    torch.manual_seed(args.seed)
    with torch.inference_mode():
        materialize(variant, "cpu").model(*variant.inputs(args.batch_size))
    gc.collect()
    _trim()
    before = _status_kb("VmRSS")
    torch.manual_seed(args.seed)
    model = materialize(variant, "cpu").model
    inputs = variant.inputs(args.batch_size)
    gc.collect()
    _trim()
    _reset_peak()  # a cast builds fp32 first; count the model as it is held, not its build
    with torch.inference_mode():
        model(*inputs)
    peak = _status_kb("VmHWM")
    print(json.dumps({"peak_mb": (peak - before) * 1024 / 1e6}))


if __name__ == "__main__":
    _child(sys.argv[1:])
