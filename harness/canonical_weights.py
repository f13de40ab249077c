"""Canonical weight files of the quality metrics: where they come from, where they are
looked for, and checking that what is loaded is what the name promises.

Look-up order: ``$AVATARBENCH_WEIGHTS`` (a folder), then the torch hub cache
(``torch.hub.get_dir()/checkpoints``, where pytorch-fid and torchvision keep them), then
``$TORCH_HOME/checkpoints`` (where facenet-pytorch keeps its file). Files are
downloaded only on request (``avatarbench weights download``), never during a run or a
test. A name that carries a hash prefix (``...-6726825d.pth``) must match the file's
sha256; ``AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS=1`` (or ``--allow-unverified-weights``)
accepts a mismatching file and every record made with it says ``unverified``."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import torch

from .errors import BadInput, unknown_name
from .checkpoints import read_state_dict, sha256_of

ENV_FOLDER = "AVATARBENCH_WEIGHTS"
ENV_UNVERIFIED = "AVATARBENCH_ALLOW_UNVERIFIED_WEIGHTS"


@dataclass(frozen=True)
class Canonical:
    file: str
    source: str
    metrics: str
    licence: str
    note: str = ""
    # files that may not be plain state dicts (syncnet_v2.model may be a pickled module)
    # are read by a converter their metric registers (``register_converter``)
    needs_conversion: bool = False
    # the published file's full sha256, for files whose name carries no hash
    sha256: Optional[str] = None

    @property
    def hash_prefix(self) -> Optional[str]:
        m = re.search(r"-([0-9a-f]{8,})\.[a-z]+$", self.file)
        return m.group(1) if m else None


CATALOG: dict[str, Canonical] = {c.file: c for c in [
    Canonical("pt_inception-2015-12-05-6726825d.pth",
              "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
              "pt_inception-2015-12-05-6726825d.pth",
              "fid, kid", "Apache-2.0 (pytorch-fid; TensorFlow Inception weights)",
              "FID Inception v3, ported from TensorFlow"),
    Canonical("alexnet-owt-7be5be79.pth", "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
              "lpips", "BSD-3-Clause (torchvision)",
              "LPIPS backbone; the lpips package ships only its linear heads"),
    Canonical("20180402-114759-vggface2.pt",
              "https://github.com/timesler/facenet-pytorch/releases/download/v2.2.9/"
              "20180402-114759-vggface2.pt",
              "identity", "MIT (facenet-pytorch); trained on VGGFace2 (research use)",
              "InceptionResnetV1; the name carries a date, not a hash",
              sha256="281cebca8662831adb987a874bdcb36e73f5b1c6dc5ee5878f305e985625d99b"),
    Canonical("syncnet_v2.model", "http://www.robots.ox.ac.uk/~vgg/software/lipsync/data/syncnet_v2.model",
              "lse_c, lse_d", "MIT (syncnet_python)",
              "a pickle (a state dict or, in some copies, a whole module): converted once to a "
              "plain state dict by a restricted loader that builds tensors and containers only",
              needs_conversion=True,
              sha256="961e8696f888fce4f3f3a6c3d5b3267cf5b343100b238e79b2659bff2c605442"),
]}


class MissingWeights(BadInput):
    """A canonical file is not present; the message says which, from where, and where to."""


def allow_unverified() -> bool:
    return os.environ.get(ENV_UNVERIFIED, "").strip().lower() in ("1", "true", "yes")


def search_folders() -> list[Path]:
    folders = []
    if os.environ.get(ENV_FOLDER):
        folders.append(Path(os.environ[ENV_FOLDER]).expanduser())
    folders.append(Path(torch.hub.get_dir()) / "checkpoints")
    # facenet-pytorch keeps its file in $TORCH_HOME/checkpoints (not hub/checkpoints)
    torch_home = Path(os.environ.get("TORCH_HOME") or Path(os.environ.get("XDG_CACHE_HOME")
                                                           or Path.home() / ".cache") / "torch")
    if torch_home.expanduser() / "checkpoints" not in folders:
        folders.append(torch_home.expanduser() / "checkpoints")
    return folders


def entry(file: str) -> Canonical:
    if file not in CATALOG:
        raise unknown_name("canonical weight file", file, CATALOG)
    return CATALOG[file]


def locate(file: str) -> Optional[Path]:
    for folder in search_folders():
        if (folder / file).is_file():
            return folder / file
    return None


def missing_message(file: str) -> str:
    c = entry(file)
    folders = search_folders()
    return (f"weights {file} (for {c.metrics}) not found; looked in "
            f"{', '.join(str(f) for f in folders)}. Download it from {c.source} and put it in "
            f"{folders[0]} (or set {ENV_FOLDER} to a folder that holds it), or run "
            f"'avatarbench weights download {file}' where a network is available")


def verify(file: str, path: Path) -> dict:
    """Hash ``path``; return its provenance. A hash-prefix mismatch is an error unless
    unverified files are allowed, in which case the provenance says ``unverified``."""
    c = entry(file)
    digest = sha256_of(path)
    if c.sha256:
        ok, promise = digest == c.sha256, f"is not {c.sha256[:16]}..., the published file's sha256"
    elif c.hash_prefix:
        ok, promise = digest.startswith(c.hash_prefix), \
            f"does not start with {c.hash_prefix}, the hash its name promises"
    else:
        ok, promise = False, "cannot be checked (no known hash)"
    if ok:
        status = "verified"
    elif allow_unverified():
        status = "unverified"
    else:
        raise BadInput(f"weights {path}: sha256 {digest[:16]}... {promise}; the file is corrupt "
                       f"or not the canonical {file} from {c.source}. Set {ENV_UNVERIFIED}=1 (or "
                       f"pass --allow-unverified-weights) to use it anyway; records will say 'unverified'")
    return {"file": file, "path": str(path), "sha256": digest, "check": status}


def resolve(file: str) -> tuple[Path, dict]:
    path = locate(file)
    if path is None:
        raise MissingWeights(missing_message(file))
    return path, verify(file, path)


def load_state(file: str) -> tuple[dict[str, torch.Tensor], dict]:
    """The canonical file as a plain state dict, without running pickled code, and its
    provenance (file, path, sha256, check)."""
    path, prov = resolve(file)
    if entry(file).needs_conversion:
        if file not in _CONVERTERS:
            raise BadInput(f"{file}: no converter is registered for this file")
        return _CONVERTERS[file](path), prov
    return read_state_dict(path), prov


_CONVERTERS: dict[str, Callable[[Path], dict]] = {}


def register_converter(file: str, convert: Callable[[Path], dict]) -> None:
    """``convert(path) -> state dict`` for a canonical file that is not a plain state
    dict; it must not run pickled code."""
    entry(file)
    _CONVERTERS[file] = convert


def download(file: str) -> str:
    """Fetch a canonical file into the first search folder and check it. Only on request."""
    c = entry(file)
    folder = search_folders()[0]
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / file
    if target.is_file():
        return f"{file}: already present at {target} ({verify(file, target)['check']})"
    part = folder / (file + ".partial")
    try:
        torch.hub.download_url_to_file(c.source, str(part), progress=True)
    except Exception as exc:
        part.unlink(missing_ok=True)
        raise BadInput(f"could not download {file} from {c.source}: {type(exc).__name__}: {exc}") from exc
    try:
        check = verify(file, part)["check"]
    except BadInput:
        part.unlink(missing_ok=True)
        raise
    part.replace(target)
    return f"{file}: saved to {target} ({check})"


def status() -> list[dict]:
    """One row per canonical file: where it is (or where to put it) and its check."""
    rows = []
    for file, c in CATALOG.items():
        path = locate(file)
        rows.append({"file": file, "metrics": c.metrics, "present": path is not None,
                     "path": str(path) if path else None, "source": c.source,
                     "hash_prefix": c.hash_prefix, "licence": c.licence, "note": c.note})
    return rows


PACKAGED = [  # (import name, folder inside it, pattern, pip name, metrics)
    ("face_recognition_models", "models", "*.dat", "face-recognition-models", "identity_dlib, lmd"),
    ("facenet_pytorch", "data", "*.pt", "facenet-pytorch", "identity (MTCNN face alignment)"),
]


def packaged() -> list[dict]:
    """Weights that ship inside installed packages (nothing to download)."""
    import importlib.util
    rows = []
    for module, folder, pattern, package, metrics in PACKAGED:
        spec = importlib.util.find_spec(module)
        if spec and spec.submodule_search_locations:
            for f in sorted((Path(list(spec.submodule_search_locations)[0]) / folder).glob(pattern)):
                rows.append({"file": f.name, "path": str(f), "package": package, "metrics": metrics})
    return rows
