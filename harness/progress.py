"""Progress of a run: a bar on a terminal, otherwise a plain line every few seconds (a log
file or a CI job shows how far a long run is without a bar's carriage returns)."""
from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


class LineProgress:
    """The part of tqdm's interface the runner uses, written as whole lines."""

    def __init__(self, total: int, desc: str, stream: TextIO, every_s: float = 10.0):
        self.total, self.desc, self.stream, self.every_s = total, desc, stream, every_s
        self.done, self.doing = 0, ""
        self.start = self.last = time.monotonic()
        self.shown = -1

    def set_postfix_str(self, text: str) -> None:
        self.doing = text
        now = time.monotonic()
        if now - self.last >= self.every_s:   # a long cell (a latency group) says it has begun
            print(f"{self.desc}: {self.done}/{self.total} cells, {now - self.start:.0f} s; now: {text}",
                  file=self.stream, flush=True)
            self.last = now

    def update(self, n: int = 1) -> None:
        self.done += n
        now = time.monotonic()
        if now - self.last >= self.every_s or self.done == self.total:
            self._line(now)

    def _line(self, now: float) -> None:
        pct = 100 * self.done // max(1, self.total)
        doing = f"; last: {self.doing}" if self.doing and self.done < self.total else ""
        print(f"{self.desc}: {self.done}/{self.total} cells ({pct}%), {now - self.start:.0f} s{doing}",
              file=self.stream, flush=True)
        self.last, self.shown = now, self.done

    def close(self) -> None:
        if self.shown != self.done and self.total:
            self._line(time.monotonic())


def progress_bar(total: int, desc: str, enabled: bool = True, stream: Optional[TextIO] = None,
                 every_s: float = 10.0):
    stream = stream or sys.stderr
    if enabled and not stream.isatty():
        return LineProgress(total, desc, stream, every_s)
    from tqdm import tqdm
    return tqdm(total=total, desc=desc, unit="cell", disable=not enabled, file=stream)
