"""The harness's PT2E INT8 (default INT8 backend: torchao's X86InductorQuantizer, lowered
by Inductor) against torch.ao INT8, FP32 eager and FP32 Inductor, side by side in one run
on this CPU, with output errors and compile times.

FP32 Inductor separates what the compiler gains from what INT8 gains. PT2E runs with and
without the sub-pixel rewrite of transposed convolutions. Weights are random (no
checkpoint ships offline) and shared by every row; calibration uses the harness's
stand-in batches, errors are against the FP32 model on other stand-in inputs.

    python tests/benchmarks/pt2e_backend.py [--models nota-wav2lip,wav2lip] [--rounds 12]
"""
import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.derive import get_variant, quantized_variant  # noqa: E402
from harness.profiling.latency import all_threads, measure_interleaved  # noqa: E402
from harness.quantize import materialize  # noqa: E402
from harness.quantize.calibration import stand_in_batches  # noqa: E402
from harness.registry import load_builtins  # noqa: E402

RECIPES = {"pt2e int8": {"backend": "pt2e", "precision": "int8"},
           "pt2e int8 (no sub-pixel)": {"backend": "pt2e", "precision": "int8", "subpixel": False},
           "torch.ao int8": {"backend": "torch", "precision": "int8"}}


def first_call_s(fn, example) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        fn(*example)
    return time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="nota-wav2lip,wav2lip")
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    import torch._inductor.config as inductor_config
    from importlib.metadata import version
    load_builtins()
    threads = all_threads()
    print(f"torch {torch.__version__}, torchao {version('torchao')}, {threads} threads, batch 1, "
          f"median of {args.rounds} interleaved rounds of 5 calls")
    for name in args.models.split(","):
        torch.manual_seed(0)
        base = get_variant(name)
        model = base.build().eval()
        example = base.inputs(1)
        held_out = stand_in_batches(base, 2, 1, 1)
        with torch.no_grad():
            reference = [model(*b) for b in held_out]
        weights = Path(tempfile.mkdtemp()) / f"{name}.pt"     # the same weights for every row
        torch.save(model.state_dict(), weights)
        calls, notes = {"fp32 eager": model}, []
        fn = torch.compile(copy.deepcopy(model))
        with inductor_config.patch(freezing=True):
            notes.append(f"fp32 inductor: first call (compile) {first_call_s(fn, example):.0f} s")
        calls["fp32 inductor"] = lambda *x, fn=fn: _frozen(fn, x)
        for label, recipe in RECIPES.items():
            v = quantized_variant(base, recipe, name=f"{name}:{label}")
            q = materialize(v, weights=str(weights)).model
            s = first_call_s(q, example)
            with torch.no_grad():
                err = max(float((q(*b) - r).abs().max()) for b, r in zip(held_out, reference))
            notes.append(f"{label}: first call {s:.0f} s, max |diff| vs fp32 {err:.2e}")
            calls[label] = q
        with torch.no_grad():
            stats = measure_interleaved({k: (lambda f=f: f(*example)) for k, f in calls.items()},
                                        batch_size=1, threads=threads, warmup=5, rounds=args.rounds, reps=5)
        base_ms = stats["fp32 eager"].median_ms
        print(f"\n{name}")
        for k, st in stats.items():
            print(f"  {k:26s} {st.median_ms:8.2f} ms  {base_ms / st.median_ms:5.2f}x vs fp32 eager")
        pt, ao_ms = stats["pt2e int8"].median_ms, stats["torch.ao int8"].median_ms
        print(f"  pt2e int8 against torch.ao int8: {ao_ms / pt:.2f}x")
        for n in notes:
            print(f"  {n}")


def _frozen(fn, x):
    import torch._inductor.config as inductor_config
    with inductor_config.patch(freezing=True):
        return fn(*x)


if __name__ == "__main__":
    main()
