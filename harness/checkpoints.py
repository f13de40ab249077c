"""Loading checkpoints without executing pickled code, and clear key-mismatch errors."""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from .errors import BadInput


def sha256_of(path: str | Path) -> str:
    """sha256 of a regular file (``harness.cache.file_sha256``: a FIFO is refused, never read)."""
    from .cache import file_sha256
    return file_sha256(path)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Read a checkpoint as a plain state dict.

    ``torch.load(weights_only=True)`` only rebuilds tensors and plain containers, so a
    pickle that would run code is refused. Official Wav2Lip checkpoints wrap the weights
    as ``{"state_dict": ...}`` and prefix names with ``module.`` (DataParallel)."""
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"checkpoint not found: {p}")
    try:
        obj = torch.load(p, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "Weights only load failed" not in str(exc):   # not a refusal: unreadable bytes
            raise BadInput(f"checkpoint {p} is corrupt or not a PyTorch checkpoint: {first}") from exc
        raise BadInput(
            f"checkpoint {p} holds pickled objects other than tensors and plain containers; "
            f"refusing to load it because unpickling could execute code ({first})") from exc
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise BadInput(f"checkpoint {p} is corrupt or not a PyTorch checkpoint: "
                       f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}") from exc
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise BadInput(f"checkpoint {p} is not a state dict (a mapping of names to tensors)")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _listing(names: list[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


def check_fit(state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], what: str) -> None:
    """Raise BadInput listing missing keys, unexpected keys and shape mismatches of
    ``state`` against ``expected`` (a model's state dict); ``what`` starts the message."""
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    wrong = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
             if k in state and state[k].shape != v.shape]
    if missing or unexpected or wrong:
        parts = [what + ":"]
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_listing(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_listing(unexpected)}")
        if wrong:
            parts.append(f"shape mismatches, checkpoint vs model ({len(wrong)}): {_listing(wrong)}")
        raise BadInput("\n  ".join(parts))


def load_into(model: nn.Module, path: str | Path, what: str = "model") -> str:
    """Load a checkpoint into ``model`` strictly; return the file's sha256."""
    state = read_state_dict(path)
    check_fit(state, model.state_dict(), f"checkpoint {path} does not fit {what}")
    model.load_state_dict(state, strict=True)
    return sha256_of(path)
