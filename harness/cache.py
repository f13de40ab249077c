"""Where derived artefacts are kept (quantized models, host measurements, face boxes,
generated videos, FID statistics, converted weights), and content hashes for their keys."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path


def cache_root() -> Path:
    """``$AVATARBENCH_CACHE``, else ``~/.cache/avatarbench``."""
    return Path(os.environ.get("AVATARBENCH_CACHE") or Path.home() / ".cache" / "avatarbench")


def state_sha256(model) -> str:
    """sha256 over a model's state dict (names and values): its weights' identity."""
    h = hashlib.sha256()
    for k, t in model.state_dict().items():
        h.update(k.encode())
        h.update(t.detach().contiguous().cpu().numpy().tobytes())
    return h.hexdigest()
