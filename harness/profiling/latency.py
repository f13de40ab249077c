"""Wall-clock latency of a forward call: warm-up, then timed calls in interleaved rounds.

Interleaving (round r times every model before round r+1 starts, in an order that
rotates each round) spreads slow drifts of the machine (thermal, other load) over all
models alike instead of penalising whichever ran last. CUDA calls are timed with events
and synchronised."""
from __future__ import annotations

import contextlib
import statistics
import time
from dataclasses import asdict, dataclass
from typing import Callable, Iterator, Optional

import torch


@dataclass
class LatencyStats:
    median_ms: float
    p90_ms: float
    min_ms: float
    max_ms: float
    mean_ms: float
    cv: float            # standard deviation / mean of the per-call times
    n: int               # timed calls
    batch_size: int
    fps: float           # frames per second at the median: batch_size / median

    def as_dict(self) -> dict:
        return asdict(self)


def summarize(times_ms: list[float], batch_size: int) -> LatencyStats:
    xs = sorted(times_ms)
    n = len(xs)
    mean = statistics.fmean(xs)
    sd = statistics.stdev(xs) if n > 1 else 0.0
    med = statistics.median(xs)
    p90 = xs[min(n - 1, max(0, int(round(0.9 * (n - 1)))))]
    return LatencyStats(med, p90, xs[0], xs[-1], mean, sd / mean if mean else 0.0, n,
                        batch_size, batch_size / (med / 1000.0) if med else float("inf"))


def resolve_threads(threads) -> int:
    if threads in (None, "all", 0):
        return all_threads()
    return int(threads)


_ALL_THREADS = torch.get_num_threads()


def all_threads() -> int:
    return _ALL_THREADS


@contextlib.contextmanager
def num_threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _timer(device: torch.device) -> Callable[[Callable[[], object]], float]:
    if device.type == "cuda":
        def cuda_time(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize(device)
            return start.elapsed_time(end)
        return cuda_time

    def cpu_time(fn):
        t0 = time.perf_counter()
        fn()
        return (time.perf_counter() - t0) * 1000.0
    return cpu_time


def measure_interleaved(calls: dict[str, Callable[[], object]], *, batch_size: int, threads: int,
                        warmup: int, rounds: int, reps: int, device: str | torch.device = "cpu",
                        warmup_s: float = 0.5,
                        progress: Optional[Callable[[int], None]] = None) -> dict[str, LatencyStats]:
    """Time each zero-argument callable ``rounds * reps`` times, interleaved by round.

    Warm-up runs each callable at least ``warmup`` times and for at least ``warmup_s``
    seconds: allocator pools, oneDNN kernel caches and CPU clocks take longer than a
    few calls of a small model to settle."""
    device = torch.device(device)
    timer = _timer(device)
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    with num_threads(threads), torch.inference_mode():
        for name in names:
            t0, n = time.perf_counter(), 0
            while n < warmup or time.perf_counter() - t0 < warmup_s:
                calls[name]()
                n += 1
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                for _ in range(reps):
                    times[name].append(timer(calls[name]))
            if progress:
                progress(1)
    return {name: summarize(ts, batch_size) for name, ts in times.items()}
