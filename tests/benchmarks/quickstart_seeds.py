"""The quickstart's generators against its floor: over their training steps, and the spread
of the student rows between training seeds.

Runs a suite derived from ``suites/quickstart.yaml`` (same data, expert, evaluator and
teacher, all from the cache when the quickstart ran before) in which the two students are
trained once per seed (``seed`` of their recipes) and every checkpoint is kept; then
scores the floor, the ground truth, and the teacher's and the seed-0 students'
checkpoints (exported from the training checkpoints) on mouth PSNR and the evaluator's
LSE-D / LSE-C, on the held-out identities. Prints both tables; the mean and standard
deviation over seeds say which differences between KD and scratch are noise.

    python tests/benchmarks/quickstart_seeds.py [--seeds 0 1 2] [--out results/quickstart-seeds]
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

METRICS = ["psnr_mouth", "lse_d", "lse_c"]


def derived_suite(seeds: list[int], keep: int) -> dict:
    q = yaml.safe_load((ROOT / "suites" / "quickstart.yaml").read_text())
    q["name"] = "quickstart-seeds"
    students = {v["name"]: v for v in q["variants"] if isinstance(v, dict) and v["name"] in ("nota-kd", "nota-scratch")}
    teacher = next(v for v in q["variants"] if isinstance(v, dict) and v["name"] == "teacher")
    teacher[next(k for k in ("train", "distill") if k in teacher)]["keep_last"] = keep
    variants = ["ground-truth", "reference-copy", teacher]
    for seed in seeds:
        for name, entry in students.items():
            field = "distill" if "distill" in entry else "train"
            variants.append({**entry, "name": f"{name}-s{seed}", field: {**entry[field], "seed": seed, "keep_last": keep}})
    q["variants"] = variants
    q["metrics"] = [m for m in q["metrics"] if (m if isinstance(m, str) else m.get("id", m["name"])) in METRICS]
    q["report"] = {"columns": METRICS, "plots": []}
    return q


def run(suite: dict, path: Path, out: Path) -> list[dict]:
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    r = subprocess.run([sys.executable, "-m", "harness.cli", "run", str(path), "--out", str(out), "--no-progress"],
                       cwd=ROOT, capture_output=True, text=True)
    if r.returncode not in (0, 2):
        sys.exit(r.stderr[-3000:])
    return [json.loads(x) for x in (out / "records.jsonl").read_text().splitlines()]


def values(recs: list[dict]) -> dict:
    return {(r["variant"], r["metric"]): r["value"] for r in recs if r["status"] == "ok"}


def export_checkpoints(training: dict, folder: Path) -> list[tuple[int, Path]]:
    """The generator's weights at every kept step, as plain state dicts."""
    out = []
    for ck in sorted(Path(training["checkpoint"]).parent.glob("checkpoints/step-*.pt")):
        state = torch.load(ck, map_location="cpu", weights_only=True)
        net = {k[len("net."):]: v for k, v in state["trainable"].items() if k.startswith("net.")}
        step = int(state["step"])
        path = folder / f"{training['label'] if 'label' in training else 'model'}-step{step}.pt"
        torch.save(net, path)
        out.append((step, path))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--out", type=Path, default=ROOT / "results" / "quickstart-seeds")
    args = ap.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    suite = derived_suite(args.seeds, keep=100)
    recs = run(suite, args.out / "seeds.yaml", args.out / "seeds")
    v = values(recs)
    floor = {m: v.get(("reference-copy", m)) for m in METRICS}
    print("\nper seed (held-out identities; LSE from the harness-trained evaluator):")
    print("| row | " + " | ".join(METRICS) + " |\n|---|" + "---:|" * len(METRICS))
    rows = ["ground-truth", "reference-copy", "teacher"] + [f"{n}-s{s}" for n in ("nota-kd", "nota-scratch")
                                                           for s in args.seeds]
    for row in rows:
        print(f"| {row} | " + " | ".join(f"{v.get((row, m), float('nan')):.3f}" for m in METRICS) + " |")
    print("\nmean ± sd over seeds " + ", ".join(map(str, args.seeds)) + ":")
    for name in ("nota-kd", "nota-scratch"):
        cells = []
        for m in METRICS:
            xs = [v[(f"{name}-s{s}", m)] for s in args.seeds if (f"{name}-s{s}", m) in v]
            sd = statistics.stdev(xs) if len(xs) > 1 else float("nan")
            cells.append(f"{m} {statistics.mean(xs):.3f} ± {sd:.3f} (floor {floor[m]:.3f})")
        print(f"  {name}: " + "; ".join(cells))
    # over training steps: the teacher's and the seed-0 students' kept checkpoints
    by = {(r["variant"], r["metric"]): r for r in recs}
    first = args.seeds[0]
    entries, labels = [], {}
    ck_dir = args.out / "checkpoints"
    ck_dir.mkdir(exist_ok=True)
    for row, arch in (("teacher", "wav2lip-nores-w2"), (f"nota-kd-s{first}", "nota-wav2lip"),
                      (f"nota-scratch-s{first}", "nota-wav2lip")):
        training = by[(row, METRICS[0])]["provenance"]["training"]
        for step, path in export_checkpoints({**training, "label": row}, ck_dir):
            name = f"{row}-step{step}"
            labels[name] = (row, step)
            entries.append({"name": name, "from": arch, "weights": str(path)})
    steps_suite = {**suite, "name": "quickstart-steps", "models": suite["models"],
                   "variants": ["reference-copy"] + entries}
    sv = values(run(steps_suite, args.out / "steps.yaml", args.out / "steps"))
    print("\nover training steps (floor: " + ", ".join(f"{m} {floor[m]:.3f}" for m in METRICS) + "):")
    print("| row | step | " + " | ".join(METRICS) + " |\n|---|---:|" + "---:|" * len(METRICS))
    for name, (row, step) in labels.items():
        print(f"| {row} | {step} | " + " | ".join(f"{sv.get((name, m), float('nan')):.3f}" for m in METRICS) + " |")


if __name__ == "__main__":
    main()
