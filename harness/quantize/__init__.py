"""Quantized variants: a parent variant plus a recipe, materialised once per recipe,
weights and calibration data (cached under ``$AVATARBENCH_CACHE/quantize/``)."""
from __future__ import annotations

import hashlib
import json
import shutil
import tempfile
import warnings
from pathlib import Path
from importlib.metadata import PackageNotFoundError, version
from typing import Optional

import torch

from ..cache import atomic_path, cache_root, state_sha256, write_atomic
from ..errors import BadInput
from ..variants import Materialized
from .recipe import BACKENDS, INT8_BACKENDS, Recipe, parse_recipe

__all__ = ["BACKENDS", "Recipe", "materialize", "parse_recipe"]

def _versions() -> dict:
    out = {"torch": torch.__version__}
    for pkg in ("onnx", "onnxruntime", "torchao"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            pass
    return out


def materialize(variant, device: str = "cpu", weights: Optional[str] = None) -> Materialized:
    """The quantized model of ``variant`` and the sha256 of the loaded weights (or None).

    Returned as one ``Materialized`` value with its provenance (parent, backend, recipe,
    calibration), per-layer plan and runtime."""
    from . import onnxrt, pt2e, subpixel
    from .calibration import batches_sha256, describe_stand_in, stand_in_batches
    from .error import output_error
    from .graph import check_layer_names, fold_batchnorm, quantizable_layers

    recipe = Recipe.model_validate(variant.recipe)
    if str(device) != "cpu":
        raise BadInput(f"variant '{variant.name}': backend '{recipe.backend}' runs on the CPU here; "
                       f"measure it with --device cpu (other devices: latency_ms@DEVICE estimates)")
    model, sha = variant.build_float(weights)
    check_layer_names(recipe.float_layers, model, f"variant '{variant.name}'")
    float_model = model
    if recipe.fold_bn or recipe.subpixel:
        import copy
        model = copy.deepcopy(model)
    if recipe.fold_bn:
        fold_batchnorm(model)
    rewritten = subpixel.rewrite(model) if recipe.subpixel else []
    cal = recipe.calibration
    training = variant.training
    if training is not None:      # a trained variant calibrates on the data it learned from
        from ..train.run import calibration_batches
        calibration = calibration_batches(training, cal.batches, cal.batch_size, cal.seed, "train")
        held_out = calibration_batches(training, 2, cal.batch_size, cal.seed + 1, "val")
    else:
        calibration = stand_in_batches(variant, cal.batches, cal.batch_size, cal.seed)
        held_out = stand_in_batches(variant, 2, cal.batch_size, cal.seed + 1)
    cal_sha = batches_sha256(calibration)
    key_src = {"recipe": recipe.model_dump(mode="json"), "parent": variant.parent,
               "weights": state_sha256(float_model), "calibration": cal_sha, "versions": _versions(),
               "rewrites": {"subpixel": subpixel.VERSION} if rewritten else {}}
    if recipe.backend == "pt2e":     # the graph and its activation range depend on these
        key_src["pt2e"] = {"version": pt2e.VERSION, "reduce_range": pt2e.reduce_range()}
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True).encode()).hexdigest()
    folder = cache_root() / "quantize" / key[:20]
    meta_path = folder / "meta.json"
    meta = _read_meta(meta_path)
    example = calibration[0]
    plan: list[dict] = []
    extra: dict = {}

    if recipe.backend in INT8_BACKENDS:
        backend = _int8_backend(recipe.backend)
        qmodel = _load_int8(backend, folder, meta, model, example, recipe) if meta is not None else None
        if qmodel is None:
            if recipe.precision == "mixed":
                from ..profiling.latency import all_threads, measure_interleaved
                from .mixed import make_plan

                def measure(models):
                    calls = {k: (lambda m=m: m(*example)) for k, m in models.items()}
                    stats = measure_interleaved(calls, batch_size=cal.batch_size, threads=all_threads(),
                                                warmup=3, warmup_s=0.3, rounds=5, reps=5, device="cpu")
                    return {k: s.median_ms for k, s in stats.items()}
                mixed_plan = make_plan(model, recipe, calibration, held_out, measure, backend,
                                       fp32_model=float_model)
                float_layers = mixed_plan["float_layers"]
                if mixed_plan["slower_than_fp32"]:
                    warnings.warn(f"variant '{variant.name}': {mixed_plan['note']}", stacklevel=2)
            else:
                mixed_plan, float_layers = None, list(recipe.float_layers)
            qmodel, state = backend.make(model, calibration, recipe, float_layers)
            with atomic_path(folder / "quantized.pt") as tmp:
                torch.save(state, tmp)
            meta = {"float_layers": float_layers, "mixed": mixed_plan}
        runtime = backend.runtime(recipe)
        kinds = quantizable_layers(model)
        if meta["mixed"]:
            plan = meta["mixed"]["layers"]
            extra["mixed"] = {k: meta["mixed"][k] for k in ("sweep", "chosen_k", "rule", "note",
                                                            "fp32_latency_ms", "slower_than_fp32")}
        else:
            default = "torch.ao default mapping" if recipe.backend == "torch" else "X86InductorQuantizer default"
            plan = [{"layer": n, "kind": k,
                     "precision": "fp32" if n in meta["float_layers"] else "int8",
                     "runs_as": "fp32" if n in meta["float_layers"] else "int8",
                     "why": "kept float by the recipe (float_layers)" if n in meta["float_layers"]
                     else default} for n, k in kinds.items()]
        for row in plan:
            if row["layer"] in rewritten:
                row["form"] = subpixel.FORM
    else:  # onnxruntime
        fp32_path, int8_path = folder / "model.fp32.onnx", folder / "model.int8.onnx"
        path = int8_path if recipe.precision == "int8" else fp32_path
        if meta is not None and not _onnx_readable(path):
            meta = None     # a damaged cache entry is made again
        if meta is None:
            folder.parent.mkdir(parents=True, exist_ok=True)
            tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
            names = onnxrt.export(model, example, tmp / fp32_path.name)
            if recipe.precision == "int8":
                onnxrt.quantize_int8(tmp / fp32_path.name, tmp / int8_path.name, names, calibration,
                                     recipe.per_channel, recipe.float_layers, rewritten)
            meta = {"input_names": names}
            (tmp / "meta.json").write_text(json.dumps(meta))
            shutil.rmtree(folder, ignore_errors=True)
            tmp.rename(folder)
        qmodel = onnxrt.OrtModule(path, meta["input_names"], threads=0)
        plan = onnxrt.plan(fp32_path, int8_path if recipe.precision == "int8" else None,
                           recipe.float_layers, rewritten)
        runtime = onnxrt.runtime()

    if _read_meta(meta_path) != meta:
        write_atomic(meta_path, json.dumps(meta))   # last: a complete entry has its meta
    error = output_error(float_model, qmodel, held_out)
    provenance = {
        "quantize": {"parent": variant.parent, "backend": recipe.backend, "runtime": runtime,
                     "recipe": recipe.model_dump(mode="json"), "recipe_hash": key,
                     "cache": str(folder),
                     "calibration": describe_stand_in(cal, cal_sha) if training is None else {
                         "source": "training data", "data": training["data_root"], "split": "train",
                         "batches": cal.batches, "batch_size": cal.batch_size, "seed": cal.seed,
                         "sha256": cal_sha, "quality_claim": True},
                     "bn_folded": recipe.fold_bn, "subpixel_rewritten": rewritten,
                     "layers": {p: sum(1 for r in plan if r["precision"] == p)
                                for p in sorted({r["precision"] for r in plan})},
                     "output_error_vs_float": {**error, "on": "held-out stand-in inputs (synthetic)"
                                               if training is None else "held-out val-split frames"},
                     **extra}}
    return Materialized(qmodel, sha, provenance, plan, runtime)


def _read_meta(path) -> Optional[dict]:
    """A cache entry's meta.json, or None when missing or unreadable (made again)."""
    try:
        meta = json.loads(path.read_text())
        return meta if isinstance(meta, dict) else None
    except (OSError, ValueError):
        return None


def _int8_backend(name: str):
    """The adapter module of an INT8 backend: ``make``, ``load`` and ``runtime``."""
    from . import pt2e, torch_ao
    if name == "pt2e":
        pt2e.require()
    return {"torch": torch_ao, "pt2e": pt2e}[name]


def _load_int8(backend, folder, meta: dict, model, example, recipe):
    """The cached INT8 model, or None when the entry is damaged (made again)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's deprecation notes on quantized tensors
            state = torch.load(folder / "quantized.pt", weights_only=True)
        return backend.load(model, example, state, recipe, meta["float_layers"])
    except BadInput:
        raise
    except Exception:   # truncated, corrupt or from another layout: a cache miss
        return None


def _onnx_readable(path) -> bool:
    import onnx
    try:
        onnx.checker.check_model(onnx.load(str(path)))
        return True
    except Exception:
        return False
