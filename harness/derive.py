"""Derived variants, in one place: ``NAME@bf16`` / ``NAME@fp16`` casts, ``NAME@int8`` /
``NAME@mixed`` and suite ``quantize:`` recipes, suite ``from:`` entries, and making any
variant ready to run (``materialize``)."""
from __future__ import annotations

import dataclasses
from typing import Optional

from .errors import BadInput, unknown_name
from .quantize.recipe import BACKENDS, Recipe, parse_recipe
from .variants import (CAST_PRECISIONS, PRECISIONS, Derivation, Materialized, Variant,
                       variants)

DEFAULT_RECIPES = {"int8": {"backend": "torch", "precision": "int8"},
                   "mixed": {"backend": "torch", "precision": "mixed"}}


def at_precision(v: Variant, precision: str) -> Variant:
    """A cast (``@bf16``, ``@fp16``) or a default quantize recipe (``@int8``, ``@mixed``)."""
    if precision == v.precision:
        return v
    if v.recipe is not None:
        raise BadInput(f"'{v.name}' is already quantized ({v.precision}); derive "
                       f"'{precision}' from its parent '{v.parent}' instead")
    if precision not in PRECISIONS:
        raise BadInput(f"unknown precision '{precision}' for '{v.name}'; "
                       f"one of {', '.join(PRECISIONS)}")
    if precision not in CAST_PRECISIONS:
        return quantized_variant(v, DEFAULT_RECIPES[precision])
    return dataclasses.replace(v, name=f"{v.name}@{precision}", parent=v.name, role="quantized",
                               precision=precision, description=f"{v.name} cast to {precision}",
                               derivation=Derivation("cast"))


def quantized_variant(parent: Variant, recipe: Recipe | dict, name: Optional[str] = None,
                      where: str = "quantize") -> Variant:
    """A derived variant of ``parent`` made by ``recipe``; callable like the parent."""
    recipe = recipe if isinstance(recipe, Recipe) else parse_recipe(recipe, where)
    if recipe.backend == "cast":
        v = at_precision(parent, recipe.precision)
        return dataclasses.replace(v, name=name or v.name)
    label = recipe.precision if recipe.backend == "torch" else f"ort-{recipe.precision}"
    return dataclasses.replace(
        parent, name=name or f"{parent.name}@{label}", parent=parent.name, role="quantized",
        precision=recipe.precision,
        description=f"{parent.name}: {BACKENDS[recipe.backend]}, {recipe.precision}",
        derivation=Derivation("quantize", recipe.model_dump(mode="json")))


def get_variant(name: str) -> Variant:
    """A registered variant, or ``BASE@PRECISION`` derived from one (``wav2lip@bf16``)."""
    if "@" in name:
        base, _, precision = name.rpartition("@")
        return at_precision(get_variant(base), precision)
    return variants.get(name)


def suite_variants(suite) -> list[Variant]:
    """Every variant a suite declares, expanded over its precisions."""
    out: list[Variant] = []
    for i, entry in enumerate(suite.variants):
        where = f"suite {suite.path}: variants[{i}] ({entry.name})"
        try:
            out += _entry_variants(suite, entry, where)
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


def _entry_variants(suite, entry, where: str) -> list[Variant]:
    base = get_variant(entry.from_ or entry.name)
    if entry.quantize is not None:
        v = quantized_variant(base, entry.quantize, name=entry.name, where=where)
        return [dataclasses.replace(v, weights=entry.weights or v.weights, registered_as=entry.from_)]
    named = entry.from_ or entry.name
    out = []
    # NAME@P already names its precision; the suite's precisions expand plain names
    for p in ([entry.precision] if entry.precision else
              [base.precision] if "@" in named else suite.precisions):
        v = at_precision(base, p)
        registered_as = v.name
        if entry.from_:
            name = entry.name if p == base.precision else f"{entry.name}@{p}"
            v = dataclasses.replace(v, name=name, parent=v.parent if p == base.precision else entry.name)
        if entry.weights:
            v = dataclasses.replace(v, weights=entry.weights)
        out.append(dataclasses.replace(v, registered_as=registered_as))
    return out


def select_variants(suite, planned: list[Variant], names: Optional[list[str]]) -> list[Variant]:
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
            raise unknown_name("variant", name, set(known) | set(variants.names()),
                               "Plugins register variants with --plugin FILE.") from None
        if base.family != suite.family:
            raise BadInput(f"--variant {name}: family '{base.family}' does not fit suite "
                           f"'{suite.name}' (family '{suite.family}')")
        precisions = [base.precision] if "@" in name else suite.precisions
        out += [at_precision(base, p) for p in precisions]
    return list({v.name: v for v in out}.values())


def materialize(v: Variant, device: str = "cpu", weights: Optional[str] = None) -> Materialized:
    """The variant ready to run at its precision on ``device``."""
    if v.recipe is not None:
        from .quantize import materialize as quantize
        return quantize(v, str(device), weights)
    model, sha = v.build_float(weights)
    import torch
    return Materialized(model.to(device=device, dtype=v.dtype), sha,
                        runtime=f"torch {torch.__version__} eager")
