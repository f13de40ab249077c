"""Training throughput: the engine against a plain PyTorch loop (same model, loss, data,
batch and optimiser), and bf16 autocast against fp32, measured side by side in one run.

    python tests/benchmarks/train_throughput.py [--model nota-wav2lip] [--steps 30] [--batch 8]

Prints samples/s of each (median of interleaved repeats) and the ratios. The engine's
time includes what it does beyond the loop: per-step NaN checks and the loss log, one
validation batch at the last step, the final checkpoint and the curve plot (no
intermediate checkpoints). Clips are read once before any run."""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.derive import get_variant  # noqa: E402
from harness.families.lipsync.synthetic import SyntheticSpec, cached_dataset  # noqa: E402
from harness.families.lipsync.training_data import ClipStore, GeneratorSamples, split_items  # noqa: E402
from harness.host import host_description  # noqa: E402
from harness.train.engine import train  # noqa: E402
from harness.train.lipsync import GeneratorTrainable  # noqa: E402
from harness.train.recipe import load_recipe  # noqa: E402


_DATA: dict = {}


def samples(root: Path, split: str) -> GeneratorSamples:
    """One dataset per split with every clip read, shared by all runs (no run pays the
    first read of the frames)."""
    if split not in _DATA:
        store = ClipStore(split_items(root, split))
        for k in range(len(store)):
            store.get(k)
        _DATA[split] = GeneratorSamples(store, 0 if split == "train" else 7919)
    return _DATA[split]


def plain_loop(model_name: str, root: Path, steps: int, batch: int, precision: str) -> float:
    torch.manual_seed(0)
    model = get_variant(model_name).build().train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    data = samples(root, "train")
    loader = torch.utils.data.DataLoader(data, batch_size=batch, sampler=range(steps * batch))
    t0 = time.perf_counter()
    for b in loader:
        with torch.autocast("cpu", torch.bfloat16, enabled=precision == "bf16"):
            pred = model(b["indiv_mels"], b["x"])
            loss = torch.nn.functional.l1_loss(pred.float(), b["y"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t0)


def engine_run(model_name: str, root: Path, steps: int, batch: int, precision: str) -> float:
    # one evaluation batch at the last step (the engine always evaluates there)
    recipe = load_recipe("scratch", {"steps": steps, "batch_size": batch, "sync": None, "precision": precision,
                                     "eval_every": 10**6, "eval_batches": 1, "checkpoint_every": 10**6,
                                     "losses": {"l1": 1.0}})
    torch.manual_seed(0)
    trainable = GeneratorTrainable(get_variant(model_name).build(), root, recipe)
    trainable._data._sets = {"train": samples(root, "train"), "val": samples(root, "val")}
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        train(trainable, recipe, tmp, progress=False)
        return steps * batch / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="nota-wav2lip")
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    root = cached_dataset(SyntheticSpec())
    print(f"host: {host_description('cpu')}; torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"model {args.model}, batch {args.batch} windows of 5 frames, {args.steps} steps, "
          f"L1 + Adam, synthetic data; median of {args.repeats} interleaved repeats")
    # warm the clip cache and the allocator once
    plain_loop(args.model, root, 2, args.batch, "fp32")
    runs: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for precision in ("fp32", "bf16"):
            runs.setdefault(f"plain {precision}", []).append(plain_loop(args.model, root, args.steps, args.batch, precision))
            runs.setdefault(f"engine {precision}", []).append(engine_run(args.model, root, args.steps, args.batch, precision))
    med = {k: statistics.median(v) for k, v in runs.items()}
    for k, v in runs.items():
        print(f"{k:12s} {med[k]:7.2f} samples/s  (runs: {', '.join(f'{x:.2f}' for x in v)})")
    for p in ("fp32", "bf16"):
        print(f"engine / plain loop, {p}: {med[f'engine {p}'] / med[f'plain {p}']:.3f} (goal >= 0.9)")
    print(f"bf16 autocast / fp32, engine: {med['engine bf16'] / med['engine fp32']:.2f}x samples/s")


if __name__ == "__main__":
    main()
