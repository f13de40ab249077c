"""How far a generator trained on the synthetic talking heads is from the floor (the
reference window's lower half pasted under the target's upper half), step by step.

The quickstart asks its teacher and students to beat that floor on held-out identities.
This trains one generator with L1 only (no sync loss: the expert's term is 0 until its
switch anyway) in a plain loop on the quickstart's data (made and cached if needed), and
prints, every ``--every`` steps: the training L1, the validation L1 on the whole window and
on its lower half, the same for the floor on the same validation samples, and the L1 on
other training-identity samples (the gap to validation shows identity overfitting).

    python tests/benchmarks/generator_floor.py [--from wav2lip-nores-w2] [--lr 1e-4]
        [--steps 600] [--batch-size 6] [--every 100] [--bf16]
"""
import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.derive import get_variant  # noqa: E402
from harness.families.lipsync.synthetic import SyntheticSpec, cached_dataset  # noqa: E402
from harness.families.lipsync.training_data import ClipStore, GeneratorSamples, split_items  # noqa: E402
from harness.registry import load_builtins  # noqa: E402


def batch(data, step, size):
    return torch.utils.data.default_collate([data[step * size + i] for i in range(size)])


def l1s(net, floor_model, batches):
    """(whole, lower half) L1 of the generator and of the floor, in eval mode."""
    net.eval()
    out = []
    with torch.no_grad():
        for b in batches:
            pred = net(b["indiv_mels"], b["x"])
            floor = floor_model(b["indiv_mels"], b["x"])
            out.append([float((p - b["y"]).abs().mean()) for p in (pred, floor)] +
                       [float((p - b["y"])[..., 48:, :].abs().mean()) for p in (pred, floor)])
    net.train()
    return np.mean(out, axis=0)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--from", dest="variant", default="wav2lip-nores-w2")
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch-size", type=int, default=6)
    ap.add_argument("--every", type=int, default=100)
    ap.add_argument("--bf16", action="store_true")
    args = ap.parse_args()
    load_builtins()
    root = cached_dataset(SyntheticSpec())      # the quickstart's data (its synthetic block is the default)
    torch.manual_seed(0)
    net = get_variant(args.variant).build().train()
    floor = get_variant("reference-copy").build()
    train = GeneratorSamples(ClipStore(split_items(root, "train")), 0)
    val = GeneratorSamples(ClipStore(split_items(root, "val")), 7919)
    val_batches = [batch(val, i, 8) for i in range(4)]
    seen_batches = [batch(train, 10**6 + i, 8) for i in range(4)]   # training identities, unseen samples
    opt = torch.optim.Adam(net.parameters(), lr=args.lr)
    print(f"{args.variant}, Adam lr {args.lr}, batch {args.batch_size} windows, "
          f"{'bf16 autocast' if args.bf16 else 'fp32'}, {torch.get_num_threads()} threads, data {root}")
    print(f"{'step':>6} {'train':>7} {'val':>7} {'floor':>7} {'val low':>8} {'floor low':>9} "
          f"{'train-id':>8} {'s/step':>7}")
    t0 = time.perf_counter()
    for step in range(args.steps):
        b = batch(train, step, args.batch_size)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.bf16):
            pred = net(b["indiv_mels"], b["x"])
        loss = (pred.float() - b["y"]).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if (step + 1) % args.every == 0 or step + 1 == args.steps:
            per_step = (time.perf_counter() - t0) / (step + 1)
            v, f, vl, fl = l1s(net, floor, val_batches)
            seen = l1s(net, floor, seen_batches)[0]
            print(f"{step + 1:6d} {float(loss.detach()):7.4f} {v:7.4f} {f:7.4f} {vl:8.4f} {fl:9.4f} {seen:8.4f} "
                  f"{per_step:7.2f}", flush=True)


if __name__ == "__main__":
    main()
