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


def regular_file(path: str | Path, what: str = "file") -> Path:
    """``path`` if it is a regular file; anything else (missing, a folder, a FIFO or device
    that would block a read) is refused with a message naming it."""
    import stat
    from .errors import BadInput
    path = Path(path)
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        raise BadInput(f"{what} {path} cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise BadInput(f"{what} {path} is not a regular file")
    return path


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(regular_file(path), "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def content_digests(root: str | Path, relpaths: list[str]) -> dict[str, str]:
    """sha256 of each file ``root/REL``. Digests are remembered under the cache by path,
    size, modification time and inode, so a large data set is read in full once; a file
    that changes in any of those is read again."""
    import json
    root = Path(root).resolve()
    memo_path = cache_root() / "digests" / (hashlib.sha256(str(root).encode()).hexdigest()[:24] + ".json")
    try:
        memo = json.loads(memo_path.read_text()) if memo_path.is_file() else {}
        memo = memo if isinstance(memo, dict) else {}
    except (OSError, ValueError):
        memo = {}
    out, changed = {}, False
    for rel in relpaths:
        p = root / rel
        st = os.stat(regular_file(p, "data file"))
        stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
        hit = memo.get(rel)
        if isinstance(hit, list) and len(hit) == 2 and hit[0] == stamp:
            out[rel] = hit[1]
            continue
        out[rel] = file_sha256(p)
        memo[rel] = [stamp, out[rel]]
        changed = True
    if changed:
        write_atomic(memo_path, json.dumps(memo))
    return out
