"""Where derived artefacts are kept (quantized models, host measurements, face boxes,
generated videos, FID statistics, converted weights), and content hashes for their keys."""
from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Iterator


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


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """A fresh temporary file beside ``path`` to write (by any writer: torch.save,
    np.save ...); on success it is flushed to disk and renamed over ``path``, so readers
    see the old file or the whole new one, never a part. The name is unique (a file or
    link placed in advance is never followed) and removed on failure."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dirfd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def write_atomic(path: str | Path, data: bytes | str) -> None:
    """Write ``data`` to ``path`` through ``atomic_path``."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
