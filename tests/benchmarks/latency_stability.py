"""How far can the harness's latency numbers be trusted? (A benchmark, not a test.)

For each variant, in one process and side by side:
1. repeat the harness's latency measurement 5 times and print the coefficient of
   variation of the 5 medians;
2. time the same call with torch.utils.benchmark (an independent timer) in alternation
   with the harness and print the ratio harness median / torch.utils.benchmark median.

    python tests/benchmarks/latency_stability.py [--variants nota-wav2lip wav2lip] [--threads 1]
"""
import argparse
import statistics

import torch
import torch.utils.benchmark as tub

from harness import get_variant
from harness.derive import materialize
from harness.profiling.latency import measure_interleaved, num_threads, resolve_threads


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variants", nargs="+", default=["nota-wav2lip", "wav2lip"])
    ap.add_argument("--threads", default="all")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args()
    threads = resolve_threads(args.threads)
    print(f"torch {torch.__version__}, threads {threads}, batch 1, "
          f"harness: warm-up >= 3 calls and >= 0.5 s, {args.rounds} rounds x {args.reps} reps per measurement")
    print(f"{'variant':16s} {'harness medians (ms)':44s} {'CV of medians':>13s} "
          f"{'t.u.benchmark (ms)':>19s} {'ratio':>6s}")
    for name in args.variants:
        v = get_variant(name)
        model = materialize(v).model
        x = v.inputs(1)
        call = {name: (lambda: model(*x))}
        harness_medians, independent = [], []
        for _ in range(args.repeats):
            s = measure_interleaved(call, batch_size=1, threads=threads, warmup=3,
                                    rounds=args.rounds, reps=args.reps)[name]
            harness_medians.append(s.median_ms)
            with num_threads(threads), torch.inference_mode():
                t = tub.Timer("model(*x)", globals={"model": model, "x": x},
                              num_threads=threads).blocked_autorange(min_run_time=1.0)
            independent.append(t.median * 1000)
        cv = statistics.stdev(harness_medians) / statistics.fmean(harness_medians)
        h, i = statistics.median(harness_medians), statistics.median(independent)
        print(f"{name:16s} {' '.join(f'{m:7.3f}' for m in harness_medians):44s} {cv:13.4f} "
              f"{i:19.3f} {h / i:6.3f}")


if __name__ == "__main__":
    main()
