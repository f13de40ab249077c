"""One writer per folder (a run folder, a training folder): an exclusive lock held for the
whole run.

The lock is ``fcntl.flock`` on ``RUN_DIR/.lock``, which the kernel releases when the
holding process ends, however it ends; a lock left by a dead process is therefore taken
over without any clean-up. The holder writes its PID into the file so that a second run
can say who holds it."""
from __future__ import annotations

import fcntl
import os
from pathlib import Path

from .errors import BadInput

LOCK_NAME = ".lock"


class RunLock:
    def __init__(self, run_dir: Path, what: str = "run folder", holder: str = "avatarbench run"):
        self.path = Path(run_dir) / LOCK_NAME
        self.what, self.holder = what, holder
        self.fd: int | None = None

    def acquire(self) -> "RunLock":
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        except OSError as exc:
            raise BadInput(f"{self.what} {self.path.parent}: cannot open its lock file "
                           f"{self.path.name} ({exc.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            os.close(fd)
            raise BadInput(f"{self.what} {self.path.parent} is in use by another {self.holder} "
                           f"(PID {holder}); wait for it to finish, or give --out another folder") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()
