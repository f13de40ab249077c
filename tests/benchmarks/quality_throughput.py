"""Throughput of the harness's FID and LPIPS against the reference tools, in one run.

On N synthetic image pairs (seeded blocky colour fields with noise; default 2,000 pairs
of 64x64, written as PNG folders):
- FID: the harness (``fid`` metric: Inception features of both sets + Frechet distance)
  against pytorch-fid's own CLI (``python -m pytorch_fid FAKE REAL --device cpu`` as a
  subprocess, its default data-loader workers) and against pytorch-fid's in-process
  ``calculate_fid_given_paths``;
- LPIPS: the harness (``lpips`` metric, batched) against a plain loop that calls
  ``lpips.LPIPS(net='alex')`` on one ``lpips.im2tensor`` pair at a time.
Prints images per second, the ratios, and whether the values agree.

Weights: the canonical files when the normal look-up finds verified copies, otherwise
random weights under the canonical names in a temporary folder (said in the output;
speed does not depend on the weights). pytorch-fid and lpips read the same files through
a temporary TORCH_HOME.

    python tests/benchmarks/quality_throughput.py [--n 2000] [--size 64] [--threads T]

The harness scores decoded arrays; the reference tools read PNG files, so the time to
decode the PNGs is printed too. Torch uses the same thread count everywhere (set with
torch.set_num_threads here, OMP_NUM_THREADS/MKL_NUM_THREADS for the CLI subprocess)."""
from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path
from unittest import mock

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from harness import canonical_weights  # noqa: E402
from harness.samples import Clip  # noqa: E402
from harness.errors import BadInput  # noqa: E402

FILES = ("pt_inception-2015-12-05-6726825d.pth", "alexnet-owt-7be5be79.pth")


def prepare_weights(tmp: Path) -> str:
    """Point AVATARBENCH_WEIGHTS and TORCH_HOME at the weights to use; say which they are."""
    found = {}
    for f in FILES:
        try:
            found[f] = canonical_weights.resolve(f)[0]
        except BadInput:
            break
    hub = tmp / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    if len(found) == len(FILES):
        for f, path in found.items():
            os.symlink(path, hub / f)
        what = "canonical weights (verified): " + ", ".join(str(p) for p in found.values())
    else:
        from test_image_metrics import random_alexnet_state, random_inception_state
        torch.save(random_inception_state(), hub / FILES[0])
        torch.save(random_alexnet_state(), hub / FILES[1])
        os.environ["AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS"] = "1"
        what = (f"RANDOM weights under the canonical names in {hub} (canonical files not found "
                f"or not verified; speed does not depend on the weights, values are not real scores)")
    os.environ["AVATARBENCH_WEIGHTS"] = str(hub)
    os.environ["TORCH_HOME"] = str(tmp / "torch")
    os.environ["AVATARBENCH_CACHE"] = str(tmp / "cache")     # no reference statistics cached yet
    return what


def synthetic_pairs(n: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, (n, size // 8 + 1, size // 8 + 1, 3)).repeat(8, 1).repeat(8, 2)[:, :size, :size]
    real = np.clip(coarse + rng.normal(0, 20, (n, size, size, 3)), 0, 255).astype(np.uint8)
    fake = np.clip(np.roll(real, 2, axis=2) + rng.normal(0, 15, real.shape), 0, 255).astype(np.uint8)
    return fake, real


def write_pngs(folder: Path, frames: np.ndarray) -> None:
    from PIL import Image
    folder.mkdir(parents=True)
    for i, f in enumerate(frames):
        Image.fromarray(f).save(folder / f"{i:05d}.png")


def read_pngs(folder: Path) -> np.ndarray:
    from PIL import Image
    return np.stack([np.asarray(Image.open(p).convert("RGB")) for p in sorted(folder.glob("*.png"))])


def timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def reference_lpips():
    """lpips.LPIPS(net='alex') as users make it; torchvision's hash check on the AlexNet
    file is switched off because random weights cannot carry the promised hash."""
    import lpips
    import torchvision.models._api as tv_api

    def without_hash_check(url, *args, **kwargs):
        return torch.hub.load_state_dict_from_url(url, *args, **{**kwargs, "check_hash": False})

    with mock.patch.object(tv_api, "load_state_dict_from_url", without_hash_check), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return lpips.LPIPS(net="alex", version="0.1", verbose=False).eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=2000, help="image pairs (default 2000)")
    ap.add_argument("--size", type=int, default=64, help="image side in pixels (default 64)")
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads")
    ap.add_argument("--batch-size", type=int, default=50, help="FID batch size (pytorch-fid's default 50)")
    ap.add_argument("--lpips-batch-size", type=int, default=50, help="harness LPIPS batch size")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(args.threads)

    import harness.metrics.fid as fid
    import harness.metrics.perceptual as perceptual

    with tempfile.TemporaryDirectory(prefix="avatarbench-quality-bench-") as tmp_name:
        tmp = Path(tmp_name)
        weights = prepare_weights(tmp)
        fake, real = synthetic_pairs(args.n, args.size)
        write_pngs(tmp / "fake", fake)
        write_pngs(tmp / "real", real)
        (fake_png, real_png), decode_s = timed(lambda: (read_pngs(tmp / "fake"), read_pngs(tmp / "real")))
        assert np.array_equal(fake_png, fake) and np.array_equal(real_png, real)
        clips = [Clip(f"c{i}", fake=fake[i:i + 100], real=real[i:i + 100]) for i in range(0, args.n, 100)]
        try:
            cpus = len(os.sched_getaffinity(0))
        except AttributeError:
            cpus = os.cpu_count()
        print(f"AvatarBench quality throughput: SYNTHETIC data, {args.n} image pairs of "
              f"{args.size}x{args.size} (seed 0)")
        print(f"weights: {weights}")
        print(f"torch {torch.__version__}, {args.threads} torch threads everywhere, {cpus} CPUs visible, "
              f"{platform.processor() or platform.machine()}, python {platform.python_version()}")
        print(f"PNG decode of both folders: {decode_s:.2f} s ({2 * args.n / decode_s:.0f} images/s)")

        # ---- FID
        options = {"region": "frame", "batch_size": args.batch_size, "device": "cpu"}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ours, ours_s = timed(lambda: fid.score(clips, options))
        if ours.value is None:
            raise SystemExit(f"harness fid gave no value: {ours.reason}")
        print(f"harness fid: {ours.value!r} in {ours_s:.1f} s (reference cache: {ours.stats['reference_cache']})",
              file=sys.stderr)
        env = {**os.environ, "PYTHONWARNINGS": "ignore"}
        cli, cli_s = timed(lambda: subprocess.run(
            [sys.executable, "-m", "pytorch_fid", str(tmp / "fake"), str(tmp / "real"), "--device", "cpu",
             "--batch-size", str(args.batch_size)], env=env, capture_output=True, text=True))
        match = re.search(r"FID:\s+([-0-9.eE+]+)", cli.stdout)
        if cli.returncode != 0 or not match:
            raise SystemExit(f"pytorch-fid CLI failed ({cli.returncode}):\n{cli.stdout}\n{cli.stderr[-3000:]}")
        cli_value = float(match.group(1))
        print(f"pytorch-fid CLI: {cli_value!r} in {cli_s:.1f} s", file=sys.stderr)
        from pytorch_fid.fid_score import calculate_fid_given_paths
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            inproc, inproc_s = timed(lambda: float(calculate_fid_given_paths(
                [str(tmp / "fake"), str(tmp / "real")], batch_size=args.batch_size, device="cpu", dims=2048)))

        # ---- LPIPS
        import lpips
        reference = reference_lpips()

        def plain_loop():
            with torch.no_grad():
                return np.array([reference(lpips.im2tensor(a), lpips.im2tensor(b)).item()
                                 for a, b in zip(fake, real)])

        loop_values, loop_s = timed(plain_loop)
        lp_options = {"batch_size": args.lpips_batch_size, "device": "cpu"}
        perceptual.load_model()                     # both sides timed with their model built
        lp, lp_s = timed(lambda: perceptual.score(clips, lp_options))
        model, _ = perceptual.load_model()
        per_pair = perceptual.distances(model, fake, real, args.lpips_batch_size)

    n_img = 2 * args.n
    rows = [("FID  harness (arrays in memory)", ours_s, n_img),
            ("FID  harness + PNG decode", ours_s + decode_s, n_img),
            ("FID  pytorch-fid CLI (subprocess)", cli_s, n_img),
            ("FID  pytorch-fid calculate_fid_given_paths", inproc_s, n_img),
            ("LPIPS harness (batch %d)" % args.lpips_batch_size, lp_s, args.n),
            ("LPIPS plain loop over lpips.LPIPS", loop_s, args.n)]
    print()
    print(f"{'what':45s} {'wall s':>8s} {'images/s':>9s}")
    for name, secs, count in rows:
        print(f"{name:45s} {secs:8.1f} {count / secs:9.1f}")
    print("(FID counts generated + reference images; LPIPS counts pairs)")
    print()
    print(f"ratio FID  harness vs pytorch-fid CLI:        {cli_s / ours_s:.2f}x "
          f"(with PNG decode {cli_s / (ours_s + decode_s):.2f}x)")
    print(f"ratio FID  harness vs calculate_fid_given_paths: {inproc_s / ours_s:.2f}x")
    print(f"ratio LPIPS harness vs plain loop:            {loop_s / lp_s:.2f}x")
    print()
    rel_cli = abs(ours.value - cli_value) / abs(cli_value)
    rel_inproc = abs(ours.value - inproc) / abs(inproc)
    print(f"FID values: harness {ours.value:.6f}, CLI {cli_value:.6f}, in-process {inproc:.6f}; "
          f"relative difference {rel_cli:.2e} (CLI), {rel_inproc:.2e} (in-process) -> "
          f"{'agree' if max(rel_cli, rel_inproc) <= 1e-4 else 'DISAGREE'} within 1e-4")
    lp_diff = abs(lp.value - loop_values.mean())
    pair_diff = float(np.abs(per_pair - loop_values).max())
    print(f"LPIPS values: harness mean {lp.value:.6f}, loop mean {loop_values.mean():.6f}; "
          f"|mean diff| {lp_diff:.2e}, max per-pair |diff| {pair_diff:.2e} -> "
          f"{'agree' if max(lp_diff, pair_diff) <= 1e-5 else 'DISAGREE'} within 1e-5")
    if ours.stats.get("warning"):
        print(f"note: {ours.stats['warning']}")


if __name__ == "__main__":
    main()
