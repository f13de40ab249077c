"""Variants and families: named, buildable models, and the task contract they obey.

A family is the seam where a new kind of model plugs in: it gives example inputs (for
profiling), reads a suite's ``data:`` into a data specification, produces a variant's
samples on that data (and says what identifies them), and names the sample type its
quality metrics consume. Deriving variants (casts, quantize recipes) and materialising
them live in ``harness.derive``."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import torch
from torch import nn

from .errors import BadInput
from .registry import Registry, current_origin

SAFE_NAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"   # variant names become file names
PRECISIONS = ("fp32", "bf16", "fp16", "int8", "mixed")
CAST_PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ROLES = ("teacher", "student", "quantized", "reference")

Inputs = Callable[[int], tuple]


@dataclass(frozen=True)
class Family:
    """The task contract of a kind of model.

    ``data_spec(raw, where, root, limit)`` validates a suite's ``data:`` mapping (naming
    ``where`` in errors) and returns an object with ``fingerprint() -> dict`` and
    ``describe() -> str``; ``produce_samples(cell) -> (samples, provenance)`` makes a
    variant's samples on that data (cached by ``samples_key(cell)``); quality metrics
    that consume ``sample_type`` score them."""
    name: str
    example_inputs: Inputs
    description: str = ""
    sample_type: str = "frames"
    data_spec: Optional[Callable[[dict, str, Optional[str], Optional[int]], Any]] = None
    produce_samples: Optional[Callable[[Any], tuple[list, dict]]] = None
    samples_key: Optional[Callable[[Any], dict]] = None


@dataclass(frozen=True)
class Derivation:
    """How a variant is made from its parent: ``cast`` to a float precision, ``quantize``
    with a recipe (a validated ``harness.quantize.Recipe`` as a dict), or ``train`` by a
    training spec (``harness.train.run``). ``base`` is the parent's derivation when the
    parent was itself trained, so a cast or quantized copy starts from the trained weights."""
    kind: str
    recipe: Optional[dict] = None
    base: Optional["Derivation"] = None

    def __post_init__(self):
        if self.kind not in ("cast", "quantize", "train"):
            raise BadInput(f"unknown derivation '{self.kind}' (cast, quantize or train)")

    def training(self) -> Optional[dict]:
        """The training spec this variant's weights come from, if any."""
        d = self
        while d is not None:
            if d.kind == "train":
                return d.recipe
            d = d.base
        return None


@dataclass
class Materialized:
    """A variant made ready to run: the model, the sha256 of the weights loaded into it,
    how it was made (a quantized variant's parent, backend, recipe, calibration), its
    per-layer precision plan, and the runtime that executes it."""
    model: nn.Module
    weights_sha256: Optional[str] = None
    provenance: dict = field(default_factory=dict)
    plan: list = field(default_factory=list)
    runtime: str = ""


@dataclass(frozen=True)
class Variant:
    name: str
    family: str
    role: str
    build: Callable[[], nn.Module]
    parent: Optional[str] = None
    precision: str = "fp32"
    weights: Optional[str] = None
    example_inputs: Optional[Inputs] = None
    description: str = ""
    derivation: Optional[Derivation] = None
    ground_truth: bool = False          # passes the reference through: no model to measure
    passthrough: bool = False           # copies an input (a floor baseline): no model to measure
    ancestors: Optional[tuple] = None   # lineage above it, when a suite declares its parents
    registered_as: Optional[str] = None  # the name that rebuilds it (in another process)

    def __post_init__(self):
        if not isinstance(self.name, str) or not re.match(SAFE_NAME, self.name):
            raise BadInput(f"variant name {self.name!r}: use letters, digits and . _ @ + - "
                           "(it becomes part of file names)")
        if self.role not in ROLES:
            raise BadInput(f"variant '{self.name}': role '{self.role}' is not one of {', '.join(ROLES)}")
        if self.precision not in PRECISIONS:
            raise BadInput(f"variant '{self.name}': precision '{self.precision}' is not one of "
                           f"{', '.join(PRECISIONS)}")

    @property
    def training(self) -> Optional[dict]:
        """The training spec of a trained variant (or of its trained ancestor)."""
        return self.derivation.training() if self.derivation is not None else None

    @property
    def recipe(self) -> Optional[dict]:
        """The quantize recipe, for a quantized variant."""
        d = self.derivation
        return d.recipe if d is not None and d.kind == "quantize" else None

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's floating inputs (quantized models take fp32)."""
        if self.precision not in CAST_PRECISIONS:
            if self.recipe is None:
                raise BadInput(f"variant '{self.name}': precision {self.precision} needs a "
                               "quantize recipe")
            return torch.float32
        return CAST_PRECISIONS[self.precision]

    def lineage(self) -> list[str]:
        """Names from the root ancestor down to this variant."""
        if self.ancestors is not None:
            return [*self.ancestors, self.name]
        chain, seen, cur = [self.name], {self.name}, self.parent
        while cur and cur not in seen:
            chain.append(cur)
            seen.add(cur)
            if cur in variants._items:
                cur = variants._items[cur].parent
            else:   # BASE@PRECISION derived from a registered BASE
                base, sep, _ = cur.rpartition("@")
                cur = base if sep and base in variants._items else None
        return list(reversed(chain))

    def inputs(self, batch_size: int = 1, device: str | torch.device = "cpu",
               dtype: Optional[torch.dtype] = None) -> tuple:
        """Example inputs at this variant's precision (or ``dtype``; floating tensors are cast)."""
        make = self.example_inputs or families.get(self.family).example_inputs
        out = make(batch_size)
        out = out if isinstance(out, tuple) else (out,)
        dtype = dtype or self.dtype
        return tuple(t.to(device=device, dtype=dtype) if t.is_floating_point() else t.to(device)
                     for t in out)

    def build_float(self, weights: Optional[str] = None) -> tuple[nn.Module, Optional[str]]:
        """The fp32 model in eval mode, with weights loaded if any; returns (model, sha256)."""
        from .checkpoints import load_into
        model = self.build()
        if not isinstance(model, nn.Module):
            raise BadInput(f"variant '{self.name}': its builder returned {type(model).__name__}, "
                           "not a torch.nn.Module")
        sha = None
        path = weights or self.weights
        if path:
            sha = load_into(model, path, what=f"variant '{self.name}'")
        return model.eval(), sha


variants: Registry[Variant] = Registry("variant")
families: Registry[Family] = Registry("family")


def register_family(family: Family) -> Family:
    return families.add(family.name, family, current_origin())


def register_variant(name_or_variant, **fields):
    """Register a variant.

    As a decorator over a builder: ``@register_variant("tiny", family="lipsync", role="student")``.
    Or directly: ``register_variant(Variant(...))``."""
    if isinstance(name_or_variant, Variant):
        return variants.add(name_or_variant.name, name_or_variant, current_origin())

    def decorate(builder: Callable[[], nn.Module]):
        variants.add(name_or_variant, Variant(name=name_or_variant, build=builder, **fields),
                     current_origin())
        return builder
    return decorate
