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

DEFAULT_RECIPES = {"int8": {"backend": "pt2e", "precision": "int8"},
                   "mixed": {"backend": "pt2e", "precision": "mixed"}}
LABEL_PREFIX = {"pt2e": "", "torch": "ao-", "onnxruntime": "ort-"}  # NAME@{prefix}{precision}


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
                               derivation=Derivation("cast", base=_trained_base(v)))


def _trained_base(v: Variant) -> Optional[Derivation]:
    return v.derivation if v.training is not None else None


def quantized_variant(parent: Variant, recipe: Recipe | dict, name: Optional[str] = None,
                      where: str = "quantize") -> Variant:
    """A derived variant of ``parent`` made by ``recipe``; callable like the parent."""
    recipe = recipe if isinstance(recipe, Recipe) else parse_recipe(recipe, where)
    if recipe.backend == "cast":
        v = at_precision(parent, recipe.precision)
        return dataclasses.replace(v, name=name or v.name)
    label = LABEL_PREFIX[recipe.backend] + recipe.precision
    return dataclasses.replace(
        parent, name=name or f"{parent.name}@{label}", parent=parent.name, role="quantized",
        precision=recipe.precision,
        description=f"{parent.name}: {BACKENDS[recipe.backend]}, {recipe.precision}",
        derivation=Derivation("quantize", recipe.model_dump(mode="json"), base=_trained_base(parent)))


def get_variant(name: str) -> Variant:
    """A registered variant, or ``BASE@PRECISION`` derived from one (``wav2lip@bf16``)."""
    if "@" in name:
        base, _, precision = name.rpartition("@")
        return at_precision(get_variant(base), precision)
    return variants.get(name)


def suite_variants(suite, data_root: Optional[str] = None) -> list[Variant]:
    """Every variant a suite declares, expanded over its precisions. Trained entries
    train on ``data_root`` (the suite's data)."""
    out: list[Variant] = []
    local = suite_models(suite, data_root)
    for i, entry in enumerate(suite.variants):
        where = f"suite {suite.path}: variants[{i}] ({entry.name})"
        try:
            made = _entry_variants(suite, entry, where, local, data_root)
        except BadInput as exc:
            raise BadInput(f"{where}: {exc}") from None
        out += made
        for v in made:
            local.setdefault(v.name, v)
    out = [_with_ancestors(v, local) for v in out]
    names = [v.name for v in out]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise BadInput(f"suite {suite.path}: variant names repeat after expansion: {', '.join(dup)}")
    for v in out:
        if v.family != suite.family:
            raise BadInput(f"suite {suite.path}: variant '{v.name}' is of family '{v.family}', "
                           f"the suite of family '{suite.family}'")
    return out


def _with_ancestors(v: Variant, local: dict) -> Variant:
    """A variant whose parents include suite-declared ones (a trained teacher) keeps its
    lineage through them."""
    if v.parent not in local:
        return v
    chain: list[str] = []
    cur, seen = v.parent, {v.name}
    while cur and cur not in seen:
        seen.add(cur)
        if cur in local:
            chain.insert(0, cur)
            cur = local[cur].parent
        else:              # a registered variant: its own lineage
            chain = get_variant(cur).lineage() + chain
            break
    return dataclasses.replace(v, ancestors=tuple(chain))


def suite_models(suite, data_root: Optional[str] = None) -> dict[str, Variant]:
    """The suite's trained helper models (``models:``) by name."""
    local: dict[str, Variant] = {}
    for i, entry in enumerate(suite.models):
        where = f"suite {suite.path}: models[{i}] ({entry.name})"
        if entry.train is None and entry.distill is None:
            raise BadInput(f"{where}: a model entry is trained: give train: or distill:")
        local[entry.name] = _trained_entry(suite, entry, where, local, data_root)
    return local


def _reference(value, local: dict, where: str, field: str) -> dict:
    """A teacher or expert: the name of a trained suite model or variant, or
    ``{from: VARIANT, weights: FILE}``."""
    if isinstance(value, dict):
        if set(value) != {"from", "weights"}:
            raise BadInput(f"{where}: {field}: give a trained model's name or {{from: VARIANT, weights: FILE}}")
        return {"from": str(value["from"]), "weights": str(value["weights"])}
    if not isinstance(value, str) or value not in local or local[value].derivation is None \
            or local[value].derivation.kind != "train":
        trained = sorted(n for n, v in local.items() if v.derivation is not None and v.derivation.kind == "train")
        raise unknown_name(f"{field} (a trained model declared before this entry)", str(value), trained,
                           "Declare helpers under models:, or give {from: VARIANT, weights: FILE}.")
    return local[value].derivation.recipe


def _trained_entry(suite, entry, where: str, local: dict, data_root: Optional[str]) -> Variant:
    distill = entry.distill is not None
    raw = dict(entry.distill if distill else entry.train)
    spec = {"label": entry.name, "recipe": str(raw.pop("recipe", "distill" if distill else "generator")),
            "from": entry.from_, "data_root": data_root}
    raw_teacher = raw.get("teacher")
    for field in ("teacher", "expert"):
        if field in raw:
            spec[field] = _reference(raw.pop(field), local, where, field)
    spec["overrides"] = raw
    from .train.recipe import load_recipe
    try:
        recipe = load_recipe(spec["recipe"], raw)
    except BadInput as exc:
        raise BadInput(f"{where}: {'distill' if distill else 'train'}: {exc}") from None
    if recipe.task == "distill" and "teacher" not in spec:
        raise BadInput(f"{where}: recipe {recipe.name} distils: give teacher: NAME")
    scored = _scored_split(suite)
    for field in ("split", "val_split"):
        if scored is not None and getattr(recipe, field) == scored:
            raise BadInput(f"{where}: recipe {recipe.name} field {field} is '{scored}', the split this suite "
                           f"scores (data.filelist {suite.data.get('filelist')}); train and validate on other "
                           "splits (train, val)")
    parent = local.get(entry.from_) or get_variant(entry.from_)
    if parent.training is not None or parent.recipe is not None:
        raise BadInput(f"{where}: train from a registered variant (its architecture), not from "
                       f"'{entry.from_}', which is itself derived")
    # a distilled student descends from its teacher (tables give ratios against it)
    teacher = raw_teacher if distill and isinstance(raw_teacher, str) else parent.name
    return dataclasses.replace(
        parent, name=entry.name, parent=teacher, weights=None, registered_as=parent.name,
        role=entry.role or ("student" if distill else parent.role),
        description=f"{parent.name} trained by recipe {recipe.name}"
                    + (" from a teacher" if distill else ""),
        derivation=Derivation("train", spec))


def _scored_split(suite) -> Optional[str]:
    """The split a suite scores: the stem of its ``data.filelist`` (``filelists/test.txt``)."""
    from pathlib import PurePath
    filelist = (suite.data or {}).get("filelist")
    return PurePath(str(filelist)).stem if filelist else None


def _entry_variants(suite, entry, where: str, local: Optional[dict] = None,
                    data_root: Optional[str] = None) -> list[Variant]:
    local = local if local is not None else {}
    if entry.train is not None or entry.distill is not None:
        trained = _trained_entry(suite, entry, where, local, data_root)
        if entry.precision:
            return [at_precision(trained, entry.precision)]
        return [at_precision(trained, p) if p != "fp32" else trained for p in suite.precisions]
    named = entry.from_ or entry.name
    stem, at, precision = named.rpartition("@")
    if named in local:
        base = local[named]
    elif at and stem in local:
        base = at_precision(local[stem], precision)
    else:
        base = get_variant(named)
    if entry.quantize is not None:
        v = quantized_variant(base, entry.quantize, name=entry.name, where=where)
        return [dataclasses.replace(v, weights=entry.weights or v.weights,
                                    registered_as=entry.from_ if named not in local else base.registered_as)]
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
    provenance = {}
    if v.training is not None and weights is None and not v.weights:
        from .train.run import trained
        path, training = trained(v.training, str(device))
        weights, provenance = str(path), {"training": training}
    if v.recipe is not None:
        from .quantize import materialize as quantize
        made = quantize(v, str(device), weights)
        made.provenance = {**provenance, **made.provenance}
        return made
    model, sha = v.build_float(weights)
    import torch
    return Materialized(model.to(device=device, dtype=v.dtype), sha, provenance,
                        runtime=f"torch {torch.__version__} eager")
