"""A plan turns a suite into jobs: one per (variant, metric) cell, serialisable, so any
executor (this process, a worker elsewhere) can run them and resume skips what is
recorded. Variants travel by name plus their derivation; the suite (and its plugins)
rebuild them wherever a job runs."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Optional

from .derive import select_variants, suite_variants
from .errors import BadInput
from .metrics import Metric, get_metric
from .suite import Suite
from .variants import Variant, families


@dataclass
class PlannedMetric:
    key: str           # the column: the suite entry's id, else the metric's name
    metric: Metric
    options: dict


@dataclass(frozen=True)
class Job:
    """One cell to compute. ``group``: computed together with the other variants' jobs
    of the same metric (latency, measured in interleaved rounds)."""
    variant: str
    metric: str
    metric_name: str
    options: dict
    group: bool
    derivation: Optional[dict]
    data: Optional[dict]

    @property
    def key(self) -> tuple[str, str]:
        return self.variant, self.metric

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Plan:
    suite: Suite
    digest: str
    variants: list[Variant]
    metrics: list[PlannedMetric]
    data: Any                    # the family's data spec, or None
    fingerprint: Optional[dict]  # what the data is (a resumed run must match it), or None
    jobs: list[Job]

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def metric(self, key: str) -> PlannedMetric:
        return next(m for m in self.metrics if m.key == key)


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


def data_spec(suite: Suite, metrics: list[PlannedMetric], data_root: Optional[str],
              limit: Optional[int], echo=print, trains: bool = False):
    """The suite's data as its family reads it, when a metric consumes samples or a
    variant trains on it."""
    family = families.get(suite.family)
    consumers = [pm for pm in metrics if pm.metric.consumes is not None]
    for pm in consumers:
        if pm.metric.consumes.sample != family.sample_type:
            raise BadInput(f"suite {suite.path}: metric '{pm.key}' scores samples of type "
                           f"'{pm.metric.consumes.sample}', but family '{family.name}' produces "
                           f"'{family.sample_type}'")
    if trains and suite.data is None:
        raise BadInput(f"suite {suite.path}: trained variants need the suite's data section "
                       "(they train on its train and val splits)")
    if suite.data is not None and (consumers or trains):
        if family.data_spec is None:
            raise BadInput(f"suite {suite.path}: family '{family.name}' reads no data")
        return family.data_spec(suite.data, suite.path or suite.name, data_root, limit)
    if limit is not None or data_root:
        echo(f"note: --limit/--data-root have no effect: suite '{suite.name}' scores no samples")
    return None


def make_plan(suite: Suite, variants: Optional[list[str]] = None, data_root: Optional[str] = None,
              limit: Optional[int] = None, echo=print) -> Plan:
    planned_metrics = resolve_metrics(suite)
    trains = bool(suite.models) or any(e.train is not None or e.distill is not None for e in suite.variants)
    data = data_spec(suite, planned_metrics, data_root, limit, echo, trains)
    root = getattr(data, "root", None) if trains else None
    planned_variants = select_variants(suite, suite_variants(suite, root), variants)
    _resolve_model_options(suite, planned_metrics, root, echo)
    fingerprint = data.fingerprint() if data is not None else None
    jobs = [Job(v.name, pm.key, pm.metric.name, pm.options, pm.metric.compute_group is not None,
                {**asdict(v.derivation), "parent": v.parent} if v.derivation else None,
                fingerprint if pm.metric.consumes is not None else None)
            for v in planned_variants for pm in planned_metrics]
    return Plan(suite, suite.digest(), planned_variants, planned_metrics, data, fingerprint, jobs)


MODEL_OPTIONS = ("evaluator",)     # metric options that may name a trained suite model


def _resolve_model_options(suite: Suite, metrics: list[PlannedMetric], root, echo) -> None:
    """A metric option naming one of the suite's trained models (``evaluator: NAME``)
    becomes that model's checkpoint, trained now if it is not cached."""
    from .derive import suite_models
    models = None
    for pm in metrics:
        for opt in MODEL_OPTIONS:
            value = pm.options.get(opt)
            if not isinstance(value, str) or not value or "/" in value or value.endswith(".pt"):
                continue
            models = models if models is not None else suite_models(suite, root)
            if value not in models:
                from .errors import unknown_name
                raise unknown_name(f"trained model (metrics {pm.key}: options.{opt})", value,
                                   sorted(models), "Declare it under the suite's models:.")
            from .train.run import trained
            echo(f"{pm.key}: {opt} '{value}' (trained by the harness; cached after the first run)")
            path, _ = trained(models[value].training)
            pm.options = {**pm.options, opt: str(path)}
