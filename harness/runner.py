"""``run SUITE``: open the run folder (or resume it), plan the suite's jobs, leave out
the recorded ones, and let an executor compute the rest; records are appended by one
writer as jobs finish."""
from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import torch

from .errors import BadInput
from .executor import LocalExecutor
from .host import check_device, host_description
from .plan import make_plan
from .progress import progress_bar
from .records import (RUN_JSON, append_record, iter_completed, read_run_json, read_typed,
                      repair_records, write_json_atomic)
from .registry import load_builtins, load_plugin, loaded_plugins
from .run_lock import LOCK_NAME, RunLock
from .suite import Suite, load_suite
from .version import __version__


@dataclass
class RunSummary:
    run_dir: Path
    computed: int = 0
    already_recorded: int = 0
    failed: list = field(default_factory=list)   # (variant, metric, error, bad_input)


def _versions() -> dict:
    out = {"python": platform.python_version(), "harness": __version__}
    for pkg in ("torch", "torchvision", "ptflops", "numpy", "scipy", "pandas", "matplotlib", "pydantic",
                "PyYAML", "lpips", "pytorch-fid", "facenet-pytorch", "syncnet-python",
                "python_speech_features", "imageio-ffmpeg", "dlib-bin", "onnxruntime", "torchao"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = None
    return out


def _git_commit() -> Optional[str]:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(__file__).parent,
                           capture_output=True, text=True, timeout=5)
        return r.stdout.strip() or None if r.returncode == 0 else None
    except (OSError, subprocess.TimeoutExpired):
        return None


def _host() -> dict:
    return {"platform": platform.platform(), "cpu": host_description("cpu"),
            "cores": os.cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _keep_model_curves(plan, run_dir: Path) -> None:
    """Curves of the trained models that metric options name (the LSE evaluator)."""
    from .executor import keep_training
    from .plan import MODEL_OPTIONS
    for pm in plan.metrics:
        for opt in MODEL_OPTIONS:
            path = pm.options.get(opt)
            if isinstance(path, str) and path.endswith("final.pt") and Path(path).is_file():
                keep_training(run_dir, Path(path).parent.name.rsplit("-", 1)[0], path)


def open_run_dir(run_dir: Path, suite: Suite, fresh: bool, device: str, echo,
                 data: Optional[dict] = None) -> None:
    """Create or reopen the run folder (held under its ``RunLock``) and write run.json."""
    digest = suite.digest()
    earlier = [p for p in run_dir.iterdir() if p.name != LOCK_NAME] if run_dir.exists() else []
    meta = {} if fresh else read_run_json(run_dir)
    if fresh and earlier:
        # the earlier run's files move aside; the lock file stays, held by this run
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kept = run_dir.with_name(f"{run_dir.name}.prev-{stamp}")
        kept.mkdir()
        for p in earlier:
            p.rename(kept / p.name)
        echo(f"--fresh: the earlier run was moved to {kept}")
    elif meta and meta.get("suite_hash") != digest:
        raise BadInput(
            f"run folder {run_dir} holds a run of suite '{meta.get('suite', {}).get('name')}' "
            f"with hash {str(meta.get('suite_hash'))[:12]}, but {suite.path} now hashes to "
            f"{digest[:12]}; pass --fresh (the old run is kept beside it) or --out DIR")
    elif meta and data and meta.get("data") and meta["data"] != data:
        was, now = meta["data"], data
        diff = ", ".join(f"{k} {was.get(k)!r} -> {now.get(k)!r}" for k in now if was.get(k) != now.get(k))
        raise BadInput(f"run folder {run_dir} was scored on other data ({diff}); resuming would mix "
                       "two datasets in one table. Pass --fresh (the old run is kept beside it) or --out DIR")
    run_dir.mkdir(parents=True, exist_ok=True)
    cut = repair_records(run_dir)
    if cut:
        echo(f"warning: cut a torn last record ({cut} bytes) from {run_dir / 'records.jsonl'}")
    if meta:
        meta.setdefault("resumed", []).append({"time": _now(), "argv": sys.argv, "device": device})
        meta["plugins"] = {**meta.get("plugins", {}), **loaded_plugins()}
    else:
        meta = {"suite": suite.model_dump(mode="json", by_alias=True), "suite_path": suite.path,
                "suite_hash": digest, "versions": _versions(), "git_commit": _git_commit(),
                "host": _host(), "device": device, "seed": suite.seed, "started": _now(),
                "argv": sys.argv, "plugins": loaded_plugins()}
    if data:
        meta["data"] = data
    write_json_atomic(run_dir / RUN_JSON, meta)


def run_suite(suite: str | Suite, out: Optional[str | Path] = None, *, variants: Optional[list[str]] = None,
              plugins: tuple = (), device: Optional[str] = None, limit: Optional[int] = None,
              fresh: bool = False, progress: bool = True, echo=print,
              data_root: Optional[str] = None) -> RunSummary:
    """Run a suite into a run folder, resuming recorded cells. Returns a summary."""
    load_builtins()
    for p in plugins:
        load_plugin(p)
    suite = suite if isinstance(suite, Suite) else load_suite(suite)
    device = device or suite.profiling.device
    check_device(device)
    plan = make_plan(suite, variants, data_root, limit, echo)
    run_dir = Path(out) if out else Path("results") / suite.name
    with RunLock(run_dir):   # one run per folder, for the whole run
        open_run_dir(run_dir, suite, fresh, device, echo, plan.fingerprint)
        done = iter_completed(read_typed(run_dir, latest_only=False), plan.digest)
        todo = [j for j in plan.jobs if j.key not in done]
        summary = RunSummary(run_dir, already_recorded=len(plan.jobs) - len(todo))
        if summary.already_recorded:
            echo(f"resuming {run_dir}: {summary.already_recorded} cells already recorded, {len(todo)} to go")
        else:
            echo(f"{suite.name}: {len(todo)} cells to compute ({len(plan.variants)} variants x "
                 f"{len(plan.metrics)} metrics) into {run_dir}")
        bar = progress_bar(len(todo), suite.name, progress)
        executor = LocalExecutor(plan, run_dir, device, list(loaded_plugins()),
                                 lambda rec: append_record(run_dir, rec), bar)
        outcome = executor.run(todo)
        bar.close()
        _keep_model_curves(plan, run_dir)
    summary.computed, summary.failed = outcome.computed, outcome.failed
    return summary
