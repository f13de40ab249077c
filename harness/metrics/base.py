"""Metrics: a named score with a direction, a unit, what it needs, and its provenance."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Optional

from ..errors import BadInput
from ..derive import materialize
from ..registry import Registry, current_origin
from ..variants import Materialized, families
from .options import check_option, spec_for


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
    retry: bool = False                             # skipped for something a user can add
                                                    # (a weights file): a resumed run tries again


@dataclass(frozen=True)
class Consumes:
    """What a quality metric scores: samples of a type (a family produces one type);
    against references ``paired`` sample by sample, as a second ``set`` (two
    distributions), or ``none``; and whether it needs the driving audio or an image of
    the source identity."""
    sample: str = "frames"
    reference: str = "paired"
    audio: bool = False
    identity: bool = False

    def __post_init__(self):
        if self.reference not in ("paired", "set", "none"):
            raise BadInput(f"consumes.reference must be paired, set or none, not {self.reference!r}")


@dataclass
class Cell:
    """What a metric gets to compute one (variant, metric) result. Cells of one variant
    share ``cache``, so its model is made once for all of them."""
    variant: Any                 # harness.variants.Variant
    options: dict
    device: str
    run_dir: Optional[Any]       # pathlib.Path, for artifacts (per-layer counts ...)
    plugins: list = field(default_factory=list)
    weights: Optional[str] = None
    cache: dict = field(default_factory=dict)
    seed: int = 0
    data: Optional[Any] = None   # the suite's data, as its family's data_spec read it

    def samples(self) -> list:
        """The variant's samples on the suite's data, produced by its family (once per
        variant; the family caches them on disk)."""
        if "samples" not in self.cache:
            family = families.get(self.variant.family)
            if family.produce_samples is None:
                raise BadInput(f"family '{family.name}' produces no samples to score")
            if self.data is None:
                raise BadInput("metric scores samples, but the suite has no data section")
            try:
                self.cache["samples"], self.cache["generation"] = family.produce_samples(self)
            except Exception as exc:   # every metric of this variant reports the same cause
                self.cache["samples"] = exc
        if isinstance(self.cache["samples"], Exception):
            raise self.cache["samples"]
        return self.cache["samples"]

    def materialized(self) -> Materialized:
        """The variant made ready at its precision on the cell's device (once)."""
        if "made" not in self.cache:
            self.cache["made"] = materialize(self.variant, self.device, self.weights)
        return self.cache["made"]

    def model(self):
        return self.materialized().model

    @property
    def provenance(self) -> dict:
        """How the materialised model was made (a quantized variant's parent, backend,
        recipe, plan summary and calibration data); empty before it is made."""
        made = self.cache.get("made")
        return dict(made.provenance) if made is not None else {}

    def float_model(self):
        """The fp32 model on the CPU (for counting, which does not depend on precision)."""
        if self.variant.precision == "fp32" and self.device == "cpu" and self.variant.recipe is None:
            return self.model()
        if "float" not in self.cache:
            self.cache["float"] = self.variant.build_float(self.weights)[0]
        return self.cache["float"]

    @property
    def weights_sha256(self) -> Optional[str]:
        made = self.cache.get("made")
        return made.weights_sha256 if made is not None else None


@dataclass(frozen=True)
class Metric:
    name: str
    direction: str                     # "lower" or "higher" is better
    unit: str
    compute: Callable[[Cell], Result]
    consumes: Optional[Consumes] = None   # None: the metric measures the model itself
    options: dict = field(default_factory=dict)   # accepted options and their defaults
    schema: dict = field(default_factory=dict)    # option name -> Option (metrics.options)
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

    @property
    def needs(self) -> str:
        """'model', or the sample type the metric consumes."""
        return self.consumes.sample if self.consumes is not None else "model"

    def resolve_options(self, given: dict, where: str) -> dict:
        unknown = sorted(set(given) - set(self.options))
        if unknown:
            raise BadInput(f"{where}: metric '{self.name}' has no option {', '.join(map(repr, unknown))}; "
                           f"options: {', '.join(sorted(self.options)) or '(none)'}")
        checked = {k: check_option(self.name, k, v, spec_for(k, self.options[k], self.schema), where)
                   for k, v in given.items()}
        return {**self.options, **checked}


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


def register_quality_metric(name: str, *, direction: str, unit: str,
                            consumes: Consumes = Consumes(), **fields):
    """Decorator over ``score(samples, options) -> Result`` that registers a quality
    metric consuming samples (``harness.samples.Clip`` for the type "frames"); in a suite
    it scores the samples the variant's family produces on the suite's data."""

    def decorate(fn):
        def compute(cell: Cell) -> Result:
            return fn(cell.samples(), cell.options)
        metrics.add(name, Metric(name=name, direction=direction, unit=unit, compute=compute,
                                 score=fn, consumes=consumes, **fields),
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
