"""Training recipes: validated YAML describing one training run (its task, losses with
weights, optimiser, schedule, steps, evaluation and checkpoints). Every error names the
file and the field. Built-in recipes live in ``harness/train/recipes/``."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import BadInput, unknown_name
from ..safe_yaml import load_yaml

BUILTIN = Path(__file__).resolve().parent / "recipes"
TASKS = ("expert", "generator", "distill")


class _Strict(BaseModel):
    # every number is finite: an infinite lr or a NaN loss weight is refused when the
    # recipe loads, naming the field, not found at step 1
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


def _betas(value: tuple[float, float], field: str) -> tuple[float, float]:
    if not all(0.0 <= b < 1.0 for b in value):
        raise ValueError(f"{field}: each beta must be in [0, 1), got {list(value)}")
    return value


class SyncSchedule(_Strict):
    """Wav2Lip's switch: the sync loss weight is ``before`` until the validation sync loss
    falls below ``below``, then ``after`` (and stays there)."""
    below: float = Field(0.75, gt=0)
    before: float = Field(0.0, ge=0, le=1)
    after: float = Field(0.01, ge=0, le=1)


class Discriminator(_Strict):
    """Wav2Lip HQ's visual quality discriminator: trained beside the generator with its own
    Adam (real lower halves against generated ones, BCE); the generator adds ``weight`` *
    BCE(disc(generated), real). ``variant`` names its architecture."""
    variant: str = "wav2lip-disc-qual"
    weight: float = Field(0.07, ge=0, lt=1)
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.5, 0.999)

    @model_validator(mode="after")
    def _betas_in_range(self):
        _betas(self.betas, "betas")
        return self


class Optimiser(_Strict):
    name: str = Field("adam", pattern="^(adam|adamw|sgd)$")
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    schedule: str = Field("constant", pattern="^(constant|cosine)$")
    warmup_steps: int = Field(0, ge=0)
    grad_clip: Optional[float] = Field(None, gt=0)

    @model_validator(mode="after")
    def _betas_in_range(self):
        _betas(self.betas, "betas")
        return self


class Recipe(_Strict):
    name: str
    task: str = Field(pattern="^(" + "|".join(TASKS) + ")$")
    description: str = ""
    steps: int = Field(ge=1)
    batch_size: int = Field(ge=1)
    seed: int = Field(0, ge=0, le=2**32 - 1)
    optimiser: Optimiser = Optimiser()
    # loss name (see harness.train.losses) -> weight; the sync loss weight follows ``sync``
    losses: dict[str, float] = Field(min_length=1)
    sync: Optional[SyncSchedule] = None
    disc: Optional[Discriminator] = None      # generator / distill: the HQ quality discriminator
    kd_blocks: Optional[list[str]] = None     # distill: which matched blocks get feature KD
    eval_every: int = Field(100, ge=1)
    eval_batches: int = Field(4, ge=1)
    checkpoint_every: int = Field(100, ge=1)
    keep_last: int = Field(2, ge=1)
    best: str = "loss"                         # the validation value that picks the best checkpoint
    precision: str = Field("fp32", pattern="^(fp32|bf16)$")   # bf16: autocast on CPU and CUDA
    # channels_last: 4-D weights (and so activations) in NHWC, which oneDNN's CPU
    # convolutions run faster (about 1.3x a generator step on a 2-core AMD EPYC, bf16)
    memory_format: str = Field("contiguous", pattern="^(contiguous|channels_last)$")
    workers: int = Field(0, ge=0, le=64)
    split: str = "train"
    val_split: str = "val"
    window: int = Field(5, ge=1)

    @model_validator(mode="after")
    def _consistent(self):
        for name, w in self.losses.items():
            if w < 0:
                raise ValueError(f"losses.{name}: weight {w} is negative")
        if self.task == "expert" and set(self.losses) != {"sync_bce"}:
            raise ValueError("an expert recipe trains with exactly one loss, sync_bce")
        if self.task != "expert" and "sync" in self.losses and self.sync is not None:
            raise ValueError("give the sync loss weight either in losses.sync or as the sync "
                             "schedule, not both")
        if self.disc is not None:
            if self.task == "expert":
                raise ValueError("disc: an expert recipe has no quality discriminator")
            if "disc_perceptual" in self.losses:
                raise ValueError("give the discriminator's weight as disc.weight, not in losses")
            top = max(self.sync.before, self.sync.after) if self.sync else 0.0
            if self.disc.weight + top >= 1:
                raise ValueError(f"disc.weight {self.disc.weight} plus the sync weight {top} leave "
                                 "nothing for the other losses (they get 1 - sync - disc)")
        if self.kd_blocks is not None:
            if not self.kd_blocks:
                raise ValueError("kd_blocks: an empty list names no block; leave the field out for the "
                                 "default blocks, or give feature_kd weight 0 for no feature KD")
            twice = sorted({b for b in self.kd_blocks if self.kd_blocks.count(b) > 1})
            if twice:
                raise ValueError(f"kd_blocks: {', '.join(twice)} named more than once")
        if self.task == "generator" and any(k in self.losses for k in ("output_kd", "feature_kd")):
            raise ValueError("KD losses need a teacher: use task distill")
        return self

    def digest(self) -> str:
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


def recipe_names() -> list[str]:
    return sorted(p.stem for p in BUILTIN.glob("*.yaml"))


def find_recipe(name_or_path: str) -> Path:
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise BadInput(f"recipe file not found: {name_or_path}")
        return p
    if (BUILTIN / f"{name_or_path}.yaml").is_file():
        return BUILTIN / f"{name_or_path}.yaml"
    raise unknown_name("recipe", name_or_path, recipe_names(), "A recipe is a name or a path to a YAML file.")


def _loc(loc: tuple) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def parse_recipe(raw: Any, where: str, overrides: Optional[dict] = None) -> Recipe:
    """A recipe from a mapping; ``overrides`` (steps, batch_size ... or nested
    ``optimiser.lr``) replace fields first. Errors name ``where`` and the field."""
    if not isinstance(raw, dict):
        raise BadInput(f"{where}: expected a mapping, got {type(raw).__name__}")
    raw = json.loads(json.dumps(raw))
    for key, value in (overrides or {}).items():
        target, parts = raw, key.split(".")
        for part in parts[:-1]:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise BadInput(f"{where}: override {key}: {part} is not a mapping")
        target[parts[-1]] = value
    try:
        recipe = Recipe.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{where}: invalid recipe:"]
        for err in exc.errors():
            msg = err["msg"].removeprefix("Value error, ")
            lines.append(f"  field {_loc(err['loc'])}: {msg}")
        raise BadInput("\n".join(lines)) from None
    from .losses import check_loss_names
    check_loss_names(recipe, where)
    return recipe


def load_recipe(name_or_path: str, overrides: Optional[dict] = None) -> Recipe:
    path = find_recipe(name_or_path)
    return parse_recipe(load_yaml(path, "recipe"), f"recipe {path}", overrides)
