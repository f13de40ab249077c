"""Quantized variants side by side on this CPU, measured in one run.

For wav2lip and nota-wav2lip: FP32 eager, BF16, INT8 by PT2E (the default backend:
torchao, Inductor) and by torch.ao, ONNX Runtime FP32 and INT8 (all INT8 with the sub-pixel
rewrite of transposed convolutions, and PT2E and ONNX Runtime without it for comparison),
and the mixed plan (PT2E). Prints median latency (interleaved rounds, all threads, batch
1), speedup against FP32 eager of the same model, and output error against FP32 (max
|diff|, PSNR with peak 1, SQNR) on held-out synthetic inputs. Then the estimated
latencies on every Jetson profile with speedups against wav2lip fp32 on the same
device, and the host estimate against the host measurement.

Weights are random (no trained checkpoint ships offline): errors are relative to the
float model on synthetic inputs, not image quality.

Then the ratios the quantization targets speak about, from the same run.

    python tests/benchmarks/quantization.py [--threads N] [--models wav2lip,nota-wav2lip]
                                            [--no-estimates]

On a machine shared with other work, all-thread timings measure thread contention more
than kernels; ``--threads 1`` gives steadier numbers. Say which was used.
"""
import argparse
import math
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.devices import devices  # noqa: E402
from harness.metrics.base import Cell  # noqa: E402
from harness.metrics.efficiency import layer_plan  # noqa: E402
from harness.profiling.estimate import estimate_layers, total_ms  # noqa: E402
from harness.profiling.latency import all_threads, measure_interleaved  # noqa: E402
from harness.profiling.macs import outres_layers  # noqa: E402
from harness.quantize.calibration import stand_in_batches  # noqa: E402
from harness.quantize.error import output_error  # noqa: E402
from harness.registry import load_builtins  # noqa: E402
from harness.derive import at_precision, get_variant, quantized_variant  # noqa: E402

JETSONS = ["jetson-nano", "jetson-tx2", "jetson-xavier-nx", "jetson-agx-xavier", "jetson-orin-nano"]


def variants_of(name):
    base = get_variant(name)
    return {"fp32 eager": base, "bf16": at_precision(base, "bf16"), "int8 (pt2e)": at_precision(base, "int8"),
            "int8 (torch.ao)": quantized_variant(base, {"backend": "torch", "precision": "int8"}),
            "ort fp32": quantized_variant(base, {"backend": "onnxruntime", "precision": "fp32"}),
            "ort int8": quantized_variant(base, {"backend": "onnxruntime", "precision": "int8"}),
            "mixed": at_precision(base, "mixed"),
            "pt2e no-subpx": quantized_variant(base, {"precision": "int8", "subpixel": False},
                                               name=f"{name}@int8-nosubpixel"),
            "ort int8 no-sp": quantized_variant(base, {"backend": "onnxruntime", "precision": "int8",
                                                       "subpixel": False}, name=f"{name}@ort-int8-nosubpixel")}


def targets(model, stats, errors):
    """The issue's targets as measured ratios (same run, same threads)."""
    ms = {label: stats[(model, label)].median_ms for label in variants_of(model)}
    lines = [f"  {model}: int8 (pt2e) speedup vs fp32 eager {ms['fp32 eager'] / ms['int8 (pt2e)']:.2f}x; "
             f"int8 (pt2e) vs ort fp32 {ms['ort fp32'] / ms['int8 (pt2e)']:.2f}x; "
             f"int8 (pt2e) vs int8 (torch.ao) {ms['int8 (torch.ao)'] / ms['int8 (pt2e)']:.2f}x; "
             f"best int8 vs fp32 eager "
             f"{ms['fp32 eager'] / min(ms['int8 (pt2e)'], ms['int8 (torch.ao)'], ms['ort int8']):.2f}x",
             f"  {model}: mixed latency / int8 latency {ms['mixed'] / ms['int8 (pt2e)']:.2f}; "
             f"mixed MSE / int8 MSE {errors['mixed']['mse'] / errors['int8 (pt2e)']['mse']:.2f}; "
             f"mixed vs fp32 eager {ms['fp32 eager'] / ms['mixed']:.2f}x"]
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=all_threads())
    ap.add_argument("--models", default="wav2lip,nota-wav2lip")
    ap.add_argument("--no-estimates", action="store_true")
    args = ap.parse_args()
    models = args.models.split(",")
    threads = args.threads
    torch.set_num_threads(threads)
    load_builtins()
    rows, calls, cells, errors = [], {}, {}, {}
    for model in models:
        for label, v in variants_of(model).items():
            torch.manual_seed(0)
            cell = Cell(v, {}, "cpu", None)
            m = cell.model()
            if callable(getattr(m, "set_threads", None)):
                m.set_threads(threads)
            x = v.inputs(1)
            calls[(model, label)] = (lambda m=m, x=x: m(*x))
            cells[(model, label)] = cell
            print(f"built {model} {label}", file=sys.stderr)
    with torch.inference_mode():
        stats = measure_interleaved(calls, batch_size=1, threads=threads, warmup=3, warmup_s=0.5,
                                    rounds=8, reps=5, device="cpu")
    load = next(iter(stats.values())).other_load
    print(f"host: {devices.get('host-cpu').description}, {threads} of {all_threads()} threads, batch 1, "
          f"torch {torch.__version__}; other processes used "
          f"{'an unknown number of' if load is None else f'{load:.2f}'} cores while timing\n")
    print(f"{'model':13s} {'variant':15s} {'median ms':>9s} {'p90 ms':>7s} {'speedup':>7s} "
          f"{'max|diff|':>9s} {'PSNR dB':>8s} {'SQNR dB':>8s}")
    for model in models:
        ref_cell = cells[(model, "fp32 eager")]
        held_out = stand_in_batches(ref_cell.variant, 2, 1, 12345)
        base = stats[(model, "fp32 eager")].median_ms
        for label in variants_of(model):
            cell = cells[(model, label)]
            s = stats[(model, label)]
            if label == "fp32 eager":
                err = {"max_abs": 0.0, "psnr_db": math.inf, "sqnr_db": math.inf}
            else:
                cast = (lambda *x, m=cell.model(), v=cell.variant: m(*(t.to(v.dtype) for t in x)).float())
                err = output_error(ref_cell.model(), cast, held_out)
            errors[label] = err
            rows.append((model, label, s.median_ms, base / s.median_ms, err))
            print(f"{model:13s} {label:15s} {s.median_ms:9.3f} {s.p90_ms:7.3f} {base / s.median_ms:6.2f}x "
                  f"{err['max_abs']:9.2e} {err['psnr_db']:8.1f} {err['sqnr_db']:8.1f}")
        mixed = cells[(model, "mixed")].provenance["quantize"]["mixed"]
        print(f"  {model} mixed: k={mixed['chosen_k']} layers kept high; rule: {mixed['rule']}")
        print(targets(model, stats, errors))
    if args.no_estimates:
        return

    print("\nestimated latency (ms, per-layer roofline; speedup against wav2lip fp32 on the same device)")
    plans = {"fp32": "fp32 eager", "fp16": "fp32 eager", "int8": "int8 (pt2e)", "mixed": "mixed"}
    print(f"{'device':18s} " + " ".join(f"{m[:4] + ' ' + p:>17s}" for m in models
                                          for p in plans))
    for dev in JETSONS:
        roof = devices.get(dev).roofline_model()
        out, ref = [], None
        for model in models:
            for p, label in plans.items():
                cell = cells[(model, label)]
                layers = outres_layers(cell.float_model(), cell.variant.inputs(1, dtype=torch.float32))
                plan = layer_plan(cell) if p == "mixed" else {}
                t = total_ms(estimate_layers(layers, roof, plan, p if p != "mixed" else "fp32"))
                ref = ref or t
                out.append(f"{t:8.3f} ({ref / t:5.1f}x)")
        print(f"{dev:18s} " + " ".join(f"{c:>17s}" for c in out))

    print("\nhost estimate against host measurement (fp32 eager and int8; estimator fitted to single "
          "conv blocks only)")
    roof = devices.get("host-cpu").roofline_model()
    for model in models:
        for label, p in (("fp32 eager", "fp32"), ("int8 (pt2e)", "int8"), ("int8 (torch.ao)", "int8"),
                         ("bf16", "bf16")):
            cell = cells[(model, label)]
            layers = outres_layers(cell.float_model(), cell.variant.inputs(1, dtype=torch.float32))
            est = total_ms(estimate_layers(layers, roof, {}, p))
            meas = stats[(model, label)].median_ms
            print(f"  {model:13s} {label:15s} estimated {est:8.3f} ms  measured {meas:8.3f} ms  "
                  f"ratio {est / meas:5.2f}")


if __name__ == "__main__":
    main()
