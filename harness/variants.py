"""Variants: named, buildable models with a family, a role, a precision and a lineage."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch
from torch import nn

from .errors import BadInput
from .registry import Registry, current_origin

PRECISIONS = ("fp32", "bf16", "fp16", "int8", "mixed")
CAST_PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
ROLES = ("teacher", "student", "quantized", "reference")

Inputs = Callable[[int], tuple]


@dataclass(frozen=True)
class Family:
    """The task contract: what a model of this family takes (for profiling)."""
    name: str
    example_inputs: Inputs
    description: str = ""


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
    extras: dict = field(default_factory=dict)

    def __post_init__(self):
        if self.role not in ROLES:
            raise BadInput(f"variant '{self.name}': role '{self.role}' is not one of {', '.join(ROLES)}")
        if self.precision not in PRECISIONS:
            raise BadInput(f"variant '{self.name}': precision '{self.precision}' is not one of "
                           f"{', '.join(PRECISIONS)}")

    @property
    def dtype(self) -> torch.dtype:
        """The dtype of the model's floating inputs (quantized models take fp32)."""
        if self.precision not in CAST_PRECISIONS:
            if "recipe" not in self.extras:
                raise BadInput(f"variant '{self.name}': precision {self.precision} needs a "
                               "quantize recipe")
            return torch.float32
        return CAST_PRECISIONS[self.precision]

    def lineage(self) -> list[str]:
        """Names from the root ancestor down to this variant."""
        chain, seen, cur = [self.name], {self.name}, self
        while cur.parent and cur.parent not in seen:
            chain.append(cur.parent)
            seen.add(cur.parent)
            cur = variants._items.get(cur.parent) or _parse_derived(cur.parent)
            if cur is None:
                break
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
        from .weights import load_into
        model = self.build()
        if not isinstance(model, nn.Module):
            raise BadInput(f"variant '{self.name}': its builder returned {type(model).__name__}, "
                           "not a torch.nn.Module")
        sha = None
        path = weights or self.weights
        if path:
            sha = load_into(model, path, what=f"variant '{self.name}'")
        return model.eval(), sha

    def materialize(self, device: str | torch.device = "cpu",
                    weights: Optional[str] = None) -> tuple[nn.Module, Optional[str]]:
        if "recipe" in self.extras:
            from .quantize import materialize
            return materialize(self, str(device), weights)
        model, sha = self.build_float(weights)
        return model.to(device=device, dtype=self.dtype), sha

    def at_precision(self, precision: str) -> "Variant":
        """A cast (``@bf16``, ``@fp16``) or a default quantize recipe (``@int8``, ``@mixed``)."""
        if precision == self.precision:
            return self
        if "recipe" in self.extras:
            raise BadInput(f"'{self.name}' is already quantized ({self.precision}); derive "
                           f"'{precision}' from its parent '{self.parent}' instead")
        if precision not in PRECISIONS:
            raise BadInput(f"unknown precision '{precision}' for '{self.name}'; "
                           f"one of {', '.join(PRECISIONS)}")
        if precision not in CAST_PRECISIONS:
            from .quantize import DEFAULT_RECIPES, quantized_variant
            return quantized_variant(self, DEFAULT_RECIPES[precision])
        return dataclasses.replace(self, name=f"{self.name}@{precision}", parent=self.name,
                                   role="quantized", precision=precision,
                                   description=f"{self.name} cast to {precision}")


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


def _parse_derived(name: str) -> Optional[Variant]:
    base, sep, precision = name.rpartition("@")
    if not sep or base not in variants._items:
        return None
    return variants._items[base].at_precision(precision)


def get_variant(name: str) -> Variant:
    """A registered variant, or ``BASE@PRECISION`` for a cast of one (``wav2lip@bf16``)."""
    if "@" in name:
        base, _, precision = name.rpartition("@")
        return get_variant(base).at_precision(precision)
    return variants.get(name)
