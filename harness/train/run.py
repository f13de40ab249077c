"""Trained models, materialised once: a training spec (recipe, parent variant, teacher,
expert, data) is trained into ``$AVATARBENCH_CACHE/trained/LABEL-KEY/`` and reused while
nothing that made it changed. The key hashes the recipe, the parent (its architecture and
initial values), the teacher's and expert's keys, the content of the training data
(``data_fingerprint``) and the package versions; checkpoints carry the recipe's and the
data's digests, and a resume onto other data or another recipe is refused. A killed
training resumes from its last checkpoint on the next request.

A spec is a plain mapping (it travels in plans and records):
``{"label", "recipe": name or path, "overrides": {...}, "from": variant,
"teacher": spec | {"weights": file}, "expert": spec | {"weights": file}, "data_root"}``."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Optional

import torch

from ..cache import cache_root, state_sha256, write_atomic
from ..checkpoints import load_into, sha256_of
from ..errors import BadInput
from .engine import train
from .recipe import Recipe, load_recipe


def recipe_of(spec: dict) -> Recipe:
    return load_recipe(spec["recipe"], spec.get("overrides") or {})


def _variant(name: str):
    """A registered variant (the architecture to train; derived names are not trainable)."""
    from ..variants import variants
    return variants.get(name)


def _init_model(spec: dict, recipe: Recipe) -> torch.nn.Module:
    torch.manual_seed(recipe.seed)
    v = _variant(spec["from"])
    model = v.build()
    if v.weights:
        load_into(model, v.weights, f"variant '{v.name}'")
    return model


def data_fingerprint(root: str | Path) -> dict:
    """What a training run learns from, by content: the train and validation filelists and
    every file of the clips they list (frames and audio), plus the synthetic generator's
    version and spec where the data is the harness's own. Two data sets that differ in any
    byte (another synthetic seed, an edited frame) have different digests."""
    from ..cache import content_digests, file_sha256
    root = Path(root)
    h = hashlib.sha256()
    rels: list[str] = []
    clips = 0
    for split in ("train", "val"):
        fl = root / "filelists" / f"{split}.txt"
        if not fl.is_file():
            continue
        h.update(f"filelist {split} {file_sha256(fl)}\n".encode())
        for line in fl.read_text().split():
            d = root / line
            if d.is_dir():
                clips += 1
                # regular files only: what training reads (a FIFO or folder is never opened)
                rels += [f"{line}/{name}" for name in sorted(p.name for p in d.iterdir() if p.is_file())]
    for rel, sha in content_digests(root, rels).items():
        h.update(f"{rel} {sha}\n".encode())
    marker = root / "SYNTHETIC"
    if marker.is_file():
        h.update(b"synthetic " + marker.read_bytes())
    return {"root": str(root), "clips": clips, "files": len(rels), "sha256": h.hexdigest(),
            "synthetic": marker.is_file()}


def _ref_key(ref: Optional[dict]) -> Optional[str]:
    if ref is None:
        return None
    if "weights" in ref:
        return "file:" + sha256_of(ref["weights"])
    return spec_key(ref)


_KEYS: dict[str, str] = {}


def spec_key(spec: dict) -> str:
    """The cache key of ``spec`` (once per process: it builds the initial models)."""
    memo = json.dumps(spec, sort_keys=True, default=str)
    if memo not in _KEYS:
        _KEYS[memo] = _spec_key(spec)
    return _KEYS[memo]


def _spec_key(spec: dict) -> str:
    from .. import version
    recipe = recipe_of(spec)
    init = _init_model(spec, recipe)
    blob = {"recipe": recipe.digest(), "from": spec["from"], "init": state_sha256(init),
            "teacher": _ref_key(spec.get("teacher")), "expert": _ref_key(spec.get("expert")),
            "data": data_fingerprint(spec["data_root"])["sha256"],
            "versions": {"torch": torch.__version__, "harness": version.__version__}}
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def folder_of(spec: dict) -> Path:
    return cache_root() / "trained" / f"{spec.get('label') or spec['from']}-{spec_key(spec)[:16]}"


def _frozen(ref: dict, device: str, what: str) -> tuple[torch.nn.Module, dict]:
    """A teacher or expert: trained (cached) from its spec, or loaded from a file."""
    if "weights" in ref:
        if "from" not in ref:
            raise BadInput(f"{what}: give the variant its weights fit ('from: VARIANT', 'weights: FILE')")
        model = _variant(ref["from"]).build()
        sha = load_into(model, ref["weights"], what)
        return model, {"weights": ref["weights"], "sha256": sha}
    path, prov = trained(ref, device)
    model = _variant(ref["from"]).build()
    load_into(model, path, what)
    return model, {"label": ref.get("label"), "recipe": prov["recipe"], "sha256": prov["checkpoint_sha256"],
                   "checkpoint": str(path)}


def make_trainable(spec: dict, recipe: Recipe, device: str):
    from .lipsync import ExpertTrainable, GeneratorTrainable
    net = _init_model(spec, recipe)
    refs: dict = {}
    if recipe.task == "expert":
        return ExpertTrainable(net, spec["data_root"], recipe), refs
    expert = teacher = None
    if spec.get("expert"):
        expert, refs["expert"] = _frozen(spec["expert"], device, "expert")
    if recipe.task == "distill":
        if not spec.get("teacher"):
            raise BadInput(f"recipe {recipe.name} distils from a teacher: give teacher: NAME")
        teacher, refs["teacher"] = _frozen(spec["teacher"], device, "teacher")
    disc = None
    if recipe.disc is not None:
        try:
            disc = _variant(recipe.disc.variant).build()
        except BadInput as exc:
            raise BadInput(f"recipe {recipe.name}: field disc.variant: {exc}") from None
    return GeneratorTrainable(net, spec["data_root"], recipe, expert=expert, teacher=teacher, disc=disc), refs


def train_into(spec: dict, out: Path, device: str = "cpu", progress: bool = True) -> dict:
    """Train (or resume) ``spec`` into ``out``; returns the provenance (also ``train.json``)."""
    import contextlib
    from ..run_lock import RunLock
    from .engine import world
    out = Path(out)
    # one writer per training folder: the lead process of a run (under torchrun the other
    # processes write nothing there)
    lock = RunLock(out, "training folder", "training") if world()[0] == 0 else contextlib.nullcontext()
    with lock:
        return _train_into(spec, out, device, progress)


def _train_into(spec: dict, out: Path, device: str, progress: bool) -> dict:
    recipe = recipe_of(spec)
    data = data_fingerprint(spec["data_root"])
    trainable, refs = make_trainable(spec, recipe, device)
    outcome = train(trainable, recipe, out, device, progress=progress, label=spec.get("label") or "",
                    data_sha256=data["sha256"])
    prov = {"recipe": recipe.name, "recipe_sha256": recipe.digest(), "task": recipe.task,
            "recipe_settings": recipe.model_dump(mode="json"),
            "from": spec["from"], "steps": outcome.steps, "final_losses": outcome.last,
            "best": {"value": outcome.best, "step": outcome.best_step, "on": recipe.best},
            "data": data, "wall_s": round(outcome.wall_s, 1),
            "resumed_from_step": outcome.resumed_from, "device": str(device),
            "checkpoint": str(outcome.final), "checkpoint_sha256": sha256_of(outcome.final),
            "notes": outcome.notes, **refs}
    write_atomic(out / "train.json", json.dumps(prov, indent=1))
    return prov


def trained(spec: dict, device: str = "cpu", progress: bool = True) -> tuple[Path, dict]:
    """The checkpoint of ``spec`` (trained now if it is not cached) and its provenance."""
    out = folder_of(spec)
    info = out / "train.json"
    if info.is_file() and (out / "final.pt").is_file():
        prov = json.loads(info.read_text())
        if prov.get("checkpoint_sha256") == sha256_of(out / "final.pt"):
            return out / "final.pt", {**prov, "cached": True}
    prov = train_into(spec, out, device, progress)
    return out / "final.pt", prov


def calibration_batches(spec: dict, batches: int, batch_size: int, seed: int,
                        split: str = "train") -> list[tuple]:
    """Frame inputs (mel (B, 1, 80, 16), face (B, 6, 96, 96)) drawn from the data a
    trained variant learned from, for post-training quantization."""
    from ..families.lipsync.training_data import ClipStore, GeneratorSamples, split_items
    data = GeneratorSamples(ClipStore(split_items(spec["data_root"], split)), seed)
    out, i = [], 0
    for _ in range(batches):
        mels, faces = [], []
        while len(mels) < batch_size:
            s = data[i]
            i += 1
            for t in range(s["x"].shape[1]):
                mels.append(s["indiv_mels"][t])
                faces.append(s["x"][:, t])
        out.append((torch.stack(mels[:batch_size]), torch.stack(faces[:batch_size])))
    return out
