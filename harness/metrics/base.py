"""Metrics: a named score with a direction, a unit, what it needs, and its provenance."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import BadInput
from ..registry import Registry, current_origin


@dataclass
class Result:
    """One metric value, or ``value=None`` with a ``reason`` for a skipped cell."""
    value: Optional[float]
    n: int = 1
    stats: dict = field(default_factory=dict)       # extra numbers (p90, cv, fps ...)
    backend: str = ""
    settings: dict = field(default_factory=dict)    # every setting that changes the number
    measured_on: str = ""                           # device the number was measured on
    estimated: bool = False
    reason: str = ""                                # why a cell was skipped


@dataclass
class Cell:
    """What a metric gets to compute one (variant, metric) result. Cells of one variant
    share ``cache``, so its model is built once for all of them."""
    variant: Any                 # harness.variants.Variant
    options: dict
    device: str
    run_dir: Optional[Any]       # pathlib.Path, for artifacts (per-layer counts ...)
    plugins: list = field(default_factory=list)
    weights: Optional[str] = None
    cache: dict = field(default_factory=dict)
    seed: int = 0
    data: Optional[Any] = None   # the suite's data (harness.lipsync.DataSpec) for quality metrics

    def clips(self):
        """The variant's generated clips on the suite's data, beside their references
        (generated once per variant and cached on disk)."""
        if "clips" not in self.cache:
            from ..lipsync import clips_for_cell
            try:
                self.cache["clips"] = clips_for_cell(self)
            except Exception as exc:   # every metric of this variant reports the same cause
                self.cache["clips"] = exc
        if isinstance(self.cache["clips"], Exception):
            raise self.cache["clips"]
        return self.cache["clips"]

    def model(self):
        """The variant's model at its precision on the cell's device."""
        if "model" not in self.cache:
            self.cache["model"], self.cache["sha256"] = self.variant.materialize(self.device, self.weights)
        return self.cache["model"]

    @property
    def provenance(self) -> dict:
        """What the materialised model says about how it was made (a quantized variant's
        parent, backend, recipe, plan summary and calibration data)."""
        model = self.cache.get("model")
        return dict(getattr(model, "avatarbench_provenance", None) or {})

    def float_model(self):
        """The fp32 model on the CPU (for counting, which does not depend on precision)."""
        if self.variant.precision == "fp32" and self.device == "cpu" and "recipe" not in self.variant.extras:
            return self.model()
        if "float" not in self.cache:
            self.cache["float"] = self.variant.build_float(self.weights)[0]
        return self.cache["float"]

    @property
    def weights_sha256(self) -> Optional[str]:
        return self.cache.get("sha256")


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str                     # "lower" or "higher" is better
    unit: str
    compute: Callable[[Cell], Result]
    needs: str = "model"               # "model" | "frames" | "video"
    options: dict = field(default_factory=dict)   # accepted options and their defaults
    description: str = ""
    display_scale: float = 1.0         # tables show value * display_scale ...
    display_unit: str = ""             # ... in this unit
    # Metrics whose cells must be computed together (latency: interleaved rounds) give
    # compute_group(cells) -> results instead of per-cell compute.
    compute_group: Optional[Callable[[list[Cell]], list[Result]]] = None
    # Metrics that take a device (``latency_ms@jetson-nano``) give per_device(name) -> Metric.
    per_device: Optional[Callable[[str], "Metric"]] = None
    # Quality metrics give score(clips, options) -> Result; ``avatarbench score`` and suite
    # runs both call it, on clips from folders/videos or from the generation protocol.
    score: Optional[Callable[[list, dict], Result]] = None

    def __post_init__(self):
        if self.direction not in ("lower", "higher"):
            raise BadInput(f"metric '{self.name}': direction must be 'lower' or 'higher'")

    def resolve_options(self, given: dict, where: str) -> dict:
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            raise BadInput(f"{where}: metric '{self.name}' has no option {', '.join(map(repr, unknown))}; "
                           f"options: {', '.join(sorted(self.options)) or '(none)'}")
        return {**self.options, **given}


metrics: Registry[Metric] = Registry("metric")


def register_metric(name: str, *, direction: str, unit: str, **fields):
    """Decorator over ``compute(cell) -> Result`` that registers a metric under ``name``.

    ``group=True`` registers the function as ``compute_group(cells) -> list[Result]``."""
    group = fields.pop("group", False)

    def decorate(fn):
        kw = {"compute_group": fn, "compute": None} if group else {"compute": fn}
        metrics.add(name, Metric(name=name, direction=direction, unit=unit, **kw, **fields),
                    current_origin(), builtin=fn.__module__.startswith("harness."))
        return fn
    return decorate


def register_quality_metric(name: str, *, direction: str, unit: str, **fields):
    """Decorator over ``score(clips, options) -> Result`` (clips: list[harness.clips.Clip])
    that registers a quality metric; in a suite it scores the variant's generated clips."""
    fields.setdefault("needs", "clips")

    def decorate(fn):
        def compute(cell: Cell) -> Result:
            return fn(cell.clips(), cell.options)
        metrics.add(name, Metric(name=name, direction=direction, unit=unit, compute=compute,
                                 score=fn, **fields),
                    current_origin(), builtin=fn.__module__.startswith("harness."))
        return fn
    return decorate


def get_metric(name: str) -> Metric:
    """A registered metric, or ``NAME@DEVICE`` for one that takes a device profile."""
    if "@" in name:
        base, _, device = name.partition("@")
        metric = metrics.get(base)
        if metric.per_device is None:
            raise BadInput(f"metric '{base}' takes no @DEVICE (in '{name}')")
        return metric.per_device(device)
    return metrics.get(name)
