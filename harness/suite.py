"""Suites: YAML files naming variants, metrics, profiling and report settings."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional, Union

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import BadInput
from .safe_yaml import load_yaml
from .variants import SAFE_NAME   # names that become file and folder names
from .registry import Registry, current_origin

BUILTIN_SUITES = Path(__file__).resolve().parent.parent / "suites"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)


class VariantEntry(_Strict):
    name: str
    from_: Optional[str] = Field(None, alias="from")
    precision: Optional[str] = None
    weights: Optional[str] = None
    quantize: Optional[dict[str, Any]] = None   # a recipe (harness.quantize.Recipe)
    train: Optional[dict[str, Any]] = None      # {recipe, expert, ...recipe overrides}
    distill: Optional[dict[str, Any]] = None    # {recipe, teacher, expert, ...overrides}
    role: Optional[str] = None

    @model_validator(mode="after")
    def _quantize_needs_from(self):
        made = [k for k in ("quantize", "train", "distill") if getattr(self, k) is not None]
        if len(made) > 1:
            raise ValueError(f"variant '{self.name}': give one of quantize, train, distill "
                             f"(got {', '.join(made)}); derive in two entries instead")
        if (self.train is not None or self.distill is not None) and not self.from_:
            raise ValueError(f"variant '{self.name}' is trained but has no 'from' (the variant "
                             "whose architecture it trains)")
        if self.quantize is not None and not self.from_:
            raise ValueError(f"variant '{self.name}' has a quantize recipe but no 'from' (its parent)")
        if self.quantize is not None and self.precision:
            raise ValueError(f"variant '{self.name}': give the precision inside quantize, not beside it")
        return self


class MetricEntry(_Strict):
    name: str
    id: Optional[str] = None
    options: dict[str, Any] = {}

    @property
    def key(self) -> str:
        """The column this entry fills: its id, else the metric's name."""
        return self.id or self.name


class Profiling(_Strict):
    device: str = "cpu"
    batch_size: int = Field(1, ge=1)


class PlotSpec(_Strict):
    x: str
    y: str
    name: Optional[str] = Field(None, pattern=SAFE_NAME)


class Report(_Strict):
    baseline: Optional[str] = None
    columns: Optional[list[str]] = None
    ratios: list[str] = []
    plots: list[PlotSpec] = []


class Suite(_Strict):
    name: str = Field(pattern=SAFE_NAME)   # the default run folder is results/NAME
    version: Union[int, str] = 1
    family: str
    description: str = ""
    seed: int = Field(0, ge=0, le=2**32 - 1)
    data: Optional[dict[str, Any]] = None
    variants: list[Union[str, VariantEntry]] = Field(min_length=1)
    models: list[VariantEntry] = []     # trained helpers (expert, evaluator): made, not scored
    precisions: list[str] = Field(["fp32"], min_length=1)
    metrics: list[Union[str, MetricEntry]] = Field(min_length=1)
    profiling: Profiling = Profiling()
    report: Report = Report()
    path: Optional[str] = Field(None, exclude=True)

    @field_validator("metrics")
    @classmethod
    def _metric_entries(cls, v):
        entries = [MetricEntry(name=m) if isinstance(m, str) else m for m in v]
        keys = [m.key for m in entries]
        dup = sorted({k for k in keys if keys.count(k) > 1})
        if dup:
            raise ValueError(f"metric ids must be unique; repeated: {', '.join(dup)} "
                             "(give each entry its own 'id')")
        return entries

    @field_validator("variants")
    @classmethod
    def _variant_entries(cls, v):
        return [VariantEntry(name=x) if isinstance(x, str) else x for x in v]

    def digest(self) -> str:
        """sha256 of the validated content (formatting and comments do not count)."""
        blob = json.dumps(self.model_dump(mode="json", by_alias=True), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


suites: Registry[Path] = Registry("suite")


def register_suite(name: str, path: str | Path) -> Path:
    return suites.add(name, Path(path), current_origin())


def _builtin_names() -> dict[str, Path]:
    return {p.stem: p for p in sorted(BUILTIN_SUITES.glob("*.yaml"))} if BUILTIN_SUITES.is_dir() else {}


def suite_names() -> list[str]:
    return sorted(set(_builtin_names()) | set(suites.names()))


def find_suite(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise BadInput(f"suite file not found: {name_or_path}")
        return p
    builtin = _builtin_names()
    if name_or_path in builtin:
        return builtin[name_or_path]
    if name_or_path in suites:
        return suites.get(name_or_path)
    from .errors import unknown_name
    raise unknown_name("suite", name_or_path, suite_names(), "A suite is a name or a path to a YAML file.")


def _loc(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part in ("str", "VariantEntry", "MetricEntry") or part.startswith("union["):
            continue
        else:
            out += ("." if out else "") + str(part)
    return out or "(top level)"


def load_suite(name_or_path: str) -> Suite:
    path = find_suite(name_or_path)
    raw = load_yaml(path, "suite")
    if not isinstance(raw, dict):
        raise BadInput(f"suite {path}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        suite = Suite.model_validate(raw)
    except ValidationError as exc:
        lines = [f"suite {path}: invalid:"]
        seen = set()
        for err in exc.errors():
            msg = f"field {_loc(err['loc'])}: {err['msg']}"
            if msg not in seen:
                seen.add(msg)
                lines.append("  " + msg)
        raise BadInput("\n".join(lines)) from None
    suite.path = str(path)
    return suite
