"""Executors run a plan's jobs and hand each finished cell to a writer as a ``Record``.

``LocalExecutor`` runs them in this process: the per-cell jobs variant by variant (each
variant's model is made once and shared by its cells, then released), then each grouped
metric across variants together (latency in interleaved rounds). Another executor (a
cluster one) runs the same jobs elsewhere and sends the records back to the one writer."""
from __future__ import annotations

import datetime as dt
import gc
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import torch

from .errors import BadInput
from .metrics import Cell, Result
from .plan import Job, Plan, PlannedMetric
from .records import Record, write_json_atomic
from .variants import Variant

NO_MODEL = "ground truth: no model to measure"
COPIES = "copies its input: no model to measure"


def _not_measured(v: Variant) -> Optional[str]:
    """Why efficiency metrics do not apply to ``v`` (no model), or None."""
    return NO_MODEL if v.ground_truth else COPIES if v.passthrough else None


@dataclass
class Outcome:
    computed: int = 0
    failed: list = field(default_factory=list)   # (variant, metric, error, bad_input)


def _now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def _weights_note(v: Variant, cell: Optional[Cell], seed: int) -> str:
    if v.ground_truth:
        return "none (ground truth)"
    if v.passthrough:
        return "none (the model has no parameters)"
    if v.weights:
        return v.weights
    made = cell.cache.get("made") if cell is not None else None
    training = made.provenance.get("training") if made is not None else None
    if training:
        return (f"trained by the harness (recipe {training['recipe']}, {training['steps']} steps): "
                f"{training['checkpoint']}")
    if v.training is not None:   # counted on the architecture without loading the trained weights
        return (f"trained by the harness (recipe {v.training['recipe']}); this metric does not "
                "depend on weight values")
    if made is not None and v.recipe is None and not any(True for _ in made.model.parameters()):
        return "none (the model has no parameters)"   # a pass-through baseline: nothing random
    return "random init (seed %d)" % seed


def make_record(plan: Plan, v: Variant, pm: PlannedMetric, device: str, res: Optional[Result],
                wall: float, cell: Optional[Cell], error: str = "", bad_input: bool = False) -> Record:
    made = dict(cell.provenance) if cell is not None else {}
    if cell is not None and "generation" in cell.cache and pm.metric.consumes is not None:
        made["generation"] = cell.cache["generation"]
    weights = {"weights": _weights_note(v, cell, plan.suite.seed),
               "weights_sha256": cell.weights_sha256 if cell is not None else None, **made}
    rec = Record(variant=v.name, metric=pm.key, status="ok", lineage=v.lineage(), role=v.role,
                 family=v.family, precision=v.precision, metric_name=pm.metric.name,
                 options=pm.options, unit=pm.metric.unit, direction=pm.metric.direction,
                 display={"scale": pm.metric.display_scale, "unit": pm.metric.display_unit},
                 suite=plan.suite.name, suite_hash=plan.digest, device=device, time=_now(),
                 wall_s=round(wall, 4), provenance=weights)
    if res is None:
        rec.status, rec.error, rec.bad_input = "failed", error, bad_input
    elif res.value is None:
        rec.status, rec.reason = "skipped", res.reason
        rec.retry = True if res.retry else None
    else:
        rec.value, rec.n, rec.stats = res.value, res.n, res.stats
        rec.provenance = {**weights, "backend": res.backend, "settings": res.settings,
                          "measured_on": res.measured_on, "estimated": res.estimated}
    return rec


def keep_training(run_dir: Path, name: str, checkpoint: str, provenance: Optional[dict] = None) -> None:
    """``training/NAME.png`` and ``.json``: a trained model's curve and provenance, beside
    the run's records (the checkpoint stays in the cache)."""
    import json
    import shutil
    folder = run_dir / "training"
    if (folder / f"{name}.json").exists():
        return
    ckpt = Path(checkpoint)
    if provenance is None:
        info = ckpt.with_name("train.json")
        if not info.is_file():
            return
        provenance = json.loads(info.read_text())
    folder.mkdir(exist_ok=True)
    if ckpt.with_name("curve.png").is_file():
        shutil.copyfile(ckpt.with_name("curve.png"), folder / f"{name}.png")
    write_json_atomic(folder / f"{name}.json", {"model": name, **provenance})


def write_training(run_dir: Path, name: str, cell: Cell) -> None:
    """A trained variant's curve and provenance, and those of its teacher and expert."""
    made = cell.cache.get("made")
    training = made.provenance.get("training") if made is not None else None
    if not training:
        return
    label = Path(training["checkpoint"]).parent.name.rsplit("-", 1)[0]   # LABEL-KEY in the cache
    keep_training(run_dir, label, training["checkpoint"], training)
    for ref in ("teacher", "expert"):
        r = training.get(ref) or {}
        if r.get("checkpoint") and r.get("label"):
            keep_training(run_dir, r["label"], r["checkpoint"])


def write_plan(run_dir: Path, name: str, cell: Cell) -> None:
    """``plans/VARIANT.json``: a quantized variant's per-layer precision plan."""
    made = cell.cache.get("made")
    path = run_dir / "plans" / f"{name}.json"
    if made is not None and made.plan and not path.exists():
        path.parent.mkdir(exist_ok=True)
        write_json_atomic(path, {"variant": name, **made.provenance.get("quantize", {}),
                                 "plan": made.plan})


def failure(exc: BaseException) -> tuple[str, bool]:
    if isinstance(exc, BadInput):
        return str(exc), True
    return f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=6)}", False


class LocalExecutor:
    def __init__(self, plan: Plan, run_dir: Path, device: str, plugins: list[str],
                 write: Callable[[Record], None], progress=None):
        self.plan, self.run_dir, self.device, self.plugins = plan, run_dir, device, plugins
        self.write, self.bar = write, progress
        self.outcome = Outcome()

    def _cell(self, v: Variant, pm: PlannedMetric, cache: Optional[dict] = None) -> Cell:
        return Cell(v, pm.options, self.device, self.run_dir, self.plugins, v.weights,
                    cache if cache is not None else {}, seed=self.plan.suite.seed, data=self.plan.data)

    def _finish(self, v, pm, res, wall, cell, error="", bad=False) -> None:
        if cell is not None and cell.provenance:
            write_plan(self.run_dir, v.name, cell)
            write_training(self.run_dir, v.name, cell)
        self.write(make_record(self.plan, v, pm, self.device, res, wall, cell, error, bad))
        if res is None:
            self.outcome.failed.append((v.name, pm.key, error, bad))
        else:
            self.outcome.computed += 1
        if self.bar is not None:
            self.bar.update(1)

    def _note(self, text: str) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str(text)

    def run(self, jobs: list[Job]) -> Outcome:
        todo = {j.key for j in jobs}
        for v in self.plan.variants:
            self._run_variant(v, [pm for pm in self.plan.metrics
                                  if pm.metric.compute_group is None and (v.name, pm.key) in todo])
        for pm in self.plan.metrics:
            if pm.metric.compute_group is not None:
                self._run_group(pm, [v for v in self.plan.variants if (v.name, pm.key) in todo])
        return self.outcome

    def _run_variant(self, v: Variant, metrics: list[PlannedMetric]) -> None:
        """Per-cell metrics of one variant, its model in memory once for all of them."""
        cache: dict = {}
        for pm in metrics:
            cell = self._cell(v, pm, cache)
            self._note(f"{v.name} {pm.key}")
            torch.manual_seed(self.plan.suite.seed)
            t0 = time.perf_counter()
            try:
                res = (Result(None, reason=_not_measured(v)) if _not_measured(v) and pm.metric.consumes is None
                       else pm.metric.compute(cell))
                self._finish(v, pm, res, time.perf_counter() - t0, cell)
            except Exception as exc:  # recorded, the run goes on
                self._finish(v, pm, None, time.perf_counter() - t0, cell, *failure(exc))
        del cache
        gc.collect()

    def _run_group(self, pm: PlannedMetric, variants: list[Variant]) -> None:
        """A metric computed across variants together (latency in interleaved rounds)."""
        group = []
        for v in variants:
            if _not_measured(v):
                self._finish(v, pm, Result(None, reason=_not_measured(v)), 0.0, None)
            else:
                group.append((v, self._cell(v, pm)))
        if not group:
            return
        self._note(f"{pm.key} ({len(group)} variants interleaved)")
        ready = []
        for v, cell in group:
            torch.manual_seed(self.plan.suite.seed)
            try:
                cell.model()
                ready.append((v, cell))
            except Exception as exc:
                self._finish(v, pm, None, 0.0, cell, *failure(exc))
        t0 = time.perf_counter()
        try:
            results = pm.metric.compute_group([c for _, c in ready])
            wall = (time.perf_counter() - t0) / max(1, len(ready))
            for (v, cell), res in zip(ready, results):
                self._finish(v, pm, res, wall, cell)
        except Exception as exc:
            for v, cell in ready:
                self._finish(v, pm, None, 0.0, cell, *failure(exc))
        del group, ready
        gc.collect()
