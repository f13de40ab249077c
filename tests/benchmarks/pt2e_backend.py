"""PT2E INT8 (torchao's X86InductorQuantizer, lowered by Inductor) against the harness's
torch.ao INT8, FP32 eager and FP32 Inductor, side by side in one run on this CPU.

This decides whether a PT2E backend should replace torch.ao (deprecated) behind the
quantization adapter: it is kept only where it is faster here. torchao is not a
dependency of the harness; this benchmark needs it installed (``pip install
torchao==0.18.0``) and a C++ compiler for Inductor. Weights are random (no checkpoint
ships offline), calibration uses the harness's stand-in batches, errors are against the
FP32 model on those inputs.

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

from harness.derive import at_precision, get_variant  # noqa: E402
from harness.profiling.latency import all_threads, measure_interleaved  # noqa: E402
from harness.quantize import materialize, subpixel  # noqa: E402
from harness.quantize.calibration import stand_in_batches  # noqa: E402
from harness.registry import load_builtins  # noqa: E402


def pt2e_int8(model, example, calibration, rewrite: bool):
    from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
    from torchao.quantization.pt2e.quantizer import x86_inductor_quantizer as xiq
    model = copy.deepcopy(model)
    if rewrite:     # the harness's exact sub-pixel rewrite of stride-2 transposed convolutions
        subpixel.rewrite(model)
    graph = torch.export.export(model, example).module()
    quantizer = xiq.X86InductorQuantizer()
    quantizer.set_global(xiq.get_default_x86_inductor_quantization_config())
    prepared = prepare_pt2e(graph, quantizer)
    with torch.no_grad():
        for batch in calibration:          # the export is specialised to batch 1
            for i in range(len(batch[0])):
                prepared(*(t[i:i + 1] for t in batch))
    return convert_pt2e(prepared)


def compiled(model, example):
    t0 = time.perf_counter()
    fn = torch.compile(model)
    with torch.no_grad():
        fn(*example)
    return fn, time.perf_counter() - t0


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="nota-wav2lip,wav2lip")
    ap.add_argument("--rounds", type=int, default=12)
    args = ap.parse_args()
    try:
        import torchao
    except ImportError:
        sys.exit("this benchmark needs torchao (pip install torchao==0.18.0)")
    import torch._inductor.config as inductor_config
    inductor_config.freezing = True          # constant weights folded, as for deployment
    load_builtins()
    threads = all_threads()
    print(f"torch {torch.__version__}, torchao {torchao.__version__}, {threads} threads, batch 1, "
          f"median of {args.rounds} interleaved rounds of 5 calls")
    for name in args.models.split(","):
        torch.manual_seed(0)
        base = get_variant(name)
        model = base.build().eval()
        calibration = stand_in_batches(base, 8, 4, 0)
        example = tuple(t[:1] for t in calibration[0])
        held_out = stand_in_batches(base, 2, 1, 1)
        with torch.no_grad():
            reference = [model(*b) for b in held_out]
        calls, notes = {"fp32 eager": model}, []
        fn, s = compiled(copy.deepcopy(model), example)
        calls["fp32 inductor"] = fn
        notes.append(f"fp32 inductor compile {s:.0f} s")
        for rewrite in (True, False):
            label = "pt2e int8" + ("" if rewrite else " (no sub-pixel)")
            fn, s = compiled(pt2e_int8(model, example, calibration, rewrite), example)
            calls[label] = fn
            with torch.no_grad():
                err = max(float((fn(*b) - r).abs().max()) for b, r in zip(held_out, reference))
            notes.append(f"{label}: compile {s:.0f} s, max |diff| vs fp32 {err:.2e}")
        weights = Path(tempfile.mkdtemp()) / f"{name}.pt"    # the same weights for torch.ao
        torch.save(model.state_dict(), weights)
        ao = materialize(at_precision(base, "int8"), weights=str(weights)).model
        calls["torch.ao int8 (harness)"] = ao
        with torch.no_grad():
            err = max(float((ao(*b) - r).abs().max()) for b, r in zip(held_out, reference))
        notes.append(f"torch.ao int8: max |diff| vs fp32 {err:.2e}")
        with torch.no_grad():
            stats = measure_interleaved({k: (lambda f=f: f(*example)) for k, f in calls.items()},
                                        batch_size=1, threads=threads, warmup=5, rounds=args.rounds, reps=5)
        base_ms = stats["fp32 eager"].median_ms
        print(f"\n{name}")
        for k, st in stats.items():
            print(f"  {k:26s} {st.median_ms:8.2f} ms  {base_ms / st.median_ms:5.2f}x vs fp32 eager")
        pt, ao_ms = stats["pt2e int8"].median_ms, stats["torch.ao int8 (harness)"].median_ms
        print(f"  pt2e int8 against torch.ao int8: {ao_ms / pt:.2f}x")
        for n in notes:
            print(f"  {n}")


if __name__ == "__main__":
    main()
