"""``run SUITE``: resolve variants and metrics, plan cells, skip recorded ones, compute
the rest and append each record as it completes."""
from __future__ import annotations

import dataclasses
import datetime as dt
import gc
import platform
import subprocess
import sys
import time
import traceback
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Optional

import torch

from . import __version__
from .errors import BadInput, unknown_name
from .metrics import Cell, Metric, Result, get_metric
from .progress import progress_bar
from .registry import load_builtins, load_plugin, loaded_plugins
from .results import (RUN_JSON, append_record, iter_completed, read_records, read_run_json,
                      repair_records, write_json_atomic)
from .suite import Suite, load_suite
from .variants import Variant, get_variant
from .variants import variants as variants_registry


@dataclass
class PlannedMetric:
    key: str
    metric: Metric
    options: dict


@dataclass
class RunSummary:
    run_dir: Path
    computed: int = 0
    already_recorded: int = 0
    failed: list = field(default_factory=list)   # (variant, metric, error, bad_input)


def check_device(device: str) -> None:
    if device != "cpu" and not device.startswith("cuda"):
        raise BadInput(f"--device {device}: expected cpu or cuda[:N]")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise BadInput(f"--device {device}: no CUDA device is available on this host")


def resolve_variants(suite: Suite) -> list[Variant]:
    out: list[Variant] = []
    for i, entry in enumerate(suite.variants):
        where = f"suite {suite.path}: variants[{i}] ({entry.name})"
        try:
            base = get_variant(entry.from_ or entry.name)
            if entry.quantize is not None:
                from .quantize import quantized_variant
                v = quantized_variant(base, entry.quantize, name=entry.name, where=where)
                v = dataclasses.replace(v, weights=entry.weights or v.weights,
                                        extras={**v.extras, "registered_as": entry.from_})
                out.append(v)
                continue
            named = entry.from_ or entry.name
            # NAME@P already names its precision; the suite's precisions expand plain names
            for p in ([entry.precision] if entry.precision else
                      [base.precision] if "@" in named else suite.precisions):
                v = base.at_precision(p)
                registered_as = v.name
                if entry.from_:
                    name = entry.name if p == base.precision else f"{entry.name}@{p}"
                    v = dataclasses.replace(v, name=name, parent=v.parent if p == base.precision
                                            else entry.name)
                if entry.weights:
                    v = dataclasses.replace(v, weights=entry.weights)
                v = dataclasses.replace(v, extras={**v.extras, "registered_as": registered_as})
                out.append(v)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}") from None
    names = [v.name for v in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BadInput(f"suite {suite.path}: variant names repeat after expansion: {', '.join(dup)}")
    for v in out:
        if v.family != suite.family:
            raise BadInput(f"suite {suite.path}: variant '{v.name}' is of family '{v.family}', "
                           f"the suite of family '{suite.family}'")
    return out


def select_variants(suite: Suite, planned: list[Variant], names: Optional[list[str]]) -> list[Variant]:
    """``--variant NAME``: the suite's variant NAME at each of its precisions (``NAME@P`` for
    one), or any registered variant (a plugin's, say), likewise at the suite's precisions."""
    if not names:
        return planned
    known = {v.name: v for v in planned}
    out: list[Variant] = []
    for name in names:
        matches = [v for n, v in known.items() if n == name or ("@" not in name and n.startswith(name + "@"))]
        if matches:
            out += matches
            continue
        try:
            base = get_variant(name)
        except BadInput:
            raise unknown_name("variant", name, set(known) | set(variants_registry.names()),
                               "Plugins register variants with --plugin FILE.") from None
        if base.family != suite.family:
            raise BadInput(f"--variant {name}: family '{base.family}' does not fit suite "
                           f"'{suite.name}' (family '{suite.family}')")
        precisions = [base.precision] if "@" in name else suite.precisions
        out += [base.at_precision(p) for p in precisions]
    return list({v.name: v for v in out}.values())


def resolve_metrics(suite: Suite) -> list[PlannedMetric]:
    out = []
    for i, entry in enumerate(suite.metrics):
        where = f"suite {suite.path}: metrics[{i}]"
        try:
            metric = get_metric(entry.name)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}") from None
        given = dict(entry.options)
        if "batch_size" in metric.options and "batch_size" not in given:
            given["batch_size"] = suite.profiling.batch_size
        out.append(PlannedMetric(entry.key, metric, metric.resolve_options(given, where)))
    return out


def _versions() -> dict:
    out = {"python": platform.python_version(), "harness": __version__}
    for pkg in ("torch", "torchvision", "ptflops", "numpy", "scipy", "pandas", "matplotlib", "pydantic",
                "PyYAML", "lpips", "pytorch-fid", "facenet-pytorch", "syncnet-python",
                "python_speech_features", "imageio-ffmpeg", "dlib-bin", "onnxruntime"):
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
    from .metrics.efficiency import host_description
    return {"platform": platform.platform(), "cpu": host_description("cpu"),
            "cores": __import__("os").cpu_count(), "torch_threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def open_run_dir(run_dir: Path, suite: Suite, fresh: bool, device: str, echo,
                 data: Optional[dict] = None) -> None:
    digest = suite.digest()
    meta = read_run_json(run_dir)
    if run_dir.exists() and fresh and any(run_dir.iterdir()):
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        kept = run_dir.with_name(f"{run_dir.name}.prev-{stamp}")
        run_dir.rename(kept)
        echo(f"--fresh: the earlier run was moved to {kept}")
        meta = {}
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


def _record(suite: Suite, digest: str, v: Variant, pm: PlannedMetric, device: str,
            res: Optional[Result], wall: float, weights_sha: Optional[str], error: str = "",
            bad_input: bool = False, made: Optional[dict] = None) -> dict:
    rec = {"variant": v.name, "lineage": v.lineage(), "role": v.role, "family": v.family,
           "precision": v.precision, "metric": pm.key, "metric_name": pm.metric.name,
           "options": pm.options, "unit": pm.metric.unit, "direction": pm.metric.direction,
           "display": {"scale": pm.metric.display_scale, "unit": pm.metric.display_unit},
           "suite": suite.name, "suite_hash": digest, "device": device, "time": _now(),
           "wall_s": round(wall, 4)}
    weights = {"weights": "none (ground truth)" if v.extras.get("ground_truth")
               else v.weights or "random init (seed %d)" % suite.seed,
               "weights_sha256": weights_sha, **(made or {})}
    if res is None:
        rec.update(status="failed", value=None, n=0, error=error, bad_input=bad_input,
                   provenance=weights)
    elif res.value is None:
        rec.update(status="skipped", value=None, n=0, reason=res.reason,
                   provenance=weights)
    else:
        rec.update(status="ok", value=res.value, n=res.n, stats=res.stats,
                   provenance={**weights, "backend": res.backend, "settings": res.settings,
                               "measured_on": res.measured_on, "estimated": res.estimated})
    return rec


def write_plan(run_dir: Path, name: str, model) -> None:
    """``plans/VARIANT.json``: a quantized variant's per-layer precision plan."""
    plan = getattr(model, "avatarbench_plan", None)
    path = run_dir / "plans" / f"{name}.json"
    if plan and not path.exists():
        path.parent.mkdir(exist_ok=True)
        write_json_atomic(path, {"variant": name, **model.avatarbench_provenance.get("quantize", {}),
                                 "plan": plan})


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
    planned_variants = select_variants(suite, resolve_variants(suite), variants)
    planned_metrics = resolve_metrics(suite)
    digest = suite.digest()
    run_dir = Path(out) if out else Path("results") / suite.name
    data = None
    if suite.data is not None and any(pm.metric.needs == "clips" for pm in planned_metrics):
        from .lipsync import DataSpec
        data = DataSpec.from_suite(suite.data, suite.path or suite.name, data_root, limit)
    elif limit is not None or data_root:
        echo(f"note: --limit/--data-root have no effect: suite '{suite.name}' scores no generated video")
    open_run_dir(run_dir, suite, fresh, device, echo, data.fingerprint() if data else None)

    done = iter_completed(read_records(run_dir, latest_only=False))
    todo = [(v, pm) for v in planned_variants for pm in planned_metrics if (v.name, pm.key) not in done]
    summary = RunSummary(run_dir, already_recorded=len(planned_variants) * len(planned_metrics) - len(todo))
    if summary.already_recorded:
        echo(f"resuming {run_dir}: {summary.already_recorded} cells already recorded, {len(todo)} to go")
    else:
        echo(f"{suite.name}: {len(todo)} cells to compute ({len(planned_variants)} variants x "
             f"{len(planned_metrics)} metrics) into {run_dir}")
    bar = progress_bar(len(todo), suite.name, progress)

    def finish(v, pm, res, wall, cell, error="", bad=False):
        sha = cell.weights_sha256 if cell is not None else None
        made = cell.provenance if cell is not None else None
        if cell is not None and "generation" in cell.cache and pm.metric.needs == "clips":
            made = {**(made or {}), "generation": cell.cache["generation"]}
        if made and cell.cache.get("model") is not None:
            write_plan(run_dir, v.name, cell.cache["model"])
        append_record(run_dir, _record(suite, digest, v, pm, device, res, wall, sha, error, bad, made))
        if res is None:
            summary.failed.append((v.name, pm.key, error, bad))
        else:
            summary.computed += 1
        bar.update(1)

    def failure(exc) -> tuple[str, bool]:
        if isinstance(exc, BadInput):
            return str(exc), True
        return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}", False

    def new_cell(v, pm, cache=None):
        return Cell(v, pm.options, device, run_dir, list(loaded_plugins()), v.weights,
                    cache if cache is not None else {}, seed=suite.seed, data=data)

    # per-cell metrics, one variant's model in memory at a time
    todo_keys = {(v.name, pm.key) for v, pm in todo}
    for v in planned_variants:
        cache: dict = {}
        for pm in planned_metrics:
            if pm.metric.compute_group is not None or (v.name, pm.key) not in todo_keys:
                continue
            cell = new_cell(v, pm, cache)
            bar.set_postfix_str(f"{v.name} {pm.key}")
            torch.manual_seed(suite.seed)
            t0 = time.perf_counter()
            try:
                res = (Result(None, reason="ground truth: no model to measure")
                       if v.extras.get("ground_truth") and pm.metric.needs != "clips"
                       else pm.metric.compute(cell))
                finish(v, pm, res, time.perf_counter() - t0, cell)
            except Exception as exc:  # recorded, the run goes on
                finish(v, pm, None, time.perf_counter() - t0, cell, *failure(exc))
        del cache
        gc.collect()

    # metrics computed across variants together (latency in interleaved rounds)
    for pm in planned_metrics:
        if pm.metric.compute_group is None:
            continue
        group = []
        for v, m in todo:
            if m is not pm:
                continue
            if v.extras.get("ground_truth"):
                finish(v, pm, Result(None, reason="ground truth: no model to measure"), 0.0, None)
            else:
                group.append((v, new_cell(v, pm)))
        if not group:
            continue
        bar.set_postfix_str(f"{pm.key} ({len(group)} variants interleaved)")
        ready = []
        for v, cell in group:
            torch.manual_seed(suite.seed)
            try:
                cell.model()
                ready.append((v, cell))
            except Exception as exc:
                finish(v, pm, None, 0.0, cell, *failure(exc))
        t0 = time.perf_counter()
        try:
            results = pm.metric.compute_group([c for _, c in ready])
            wall = (time.perf_counter() - t0) / max(1, len(ready))
            for (v, cell), res in zip(ready, results):
                finish(v, pm, res, wall, cell)
        except Exception as exc:
            for v, cell in ready:
                finish(v, pm, None, 0.0, cell, *failure(exc))
        del group, ready
        gc.collect()
    bar.close()
    return summary
