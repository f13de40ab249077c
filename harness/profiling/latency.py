"""Wall-clock latency of a forward call: warm-up, then timed calls in interleaved rounds.

Interleaving (round r times every model before round r+1 starts, in an order that
rotates each round) spreads slow drifts of the machine (thermal, other load) over all
models alike instead of penalising whichever ran last. CUDA calls are timed with events
and synchronised.

A measurement is judged after it is taken: a coefficient of variation above a threshold,
or other processes using the cores the timed calls need (``/proc/stat`` against this
process's own CPU time), makes it unstable. Unstable measurements are taken again within
a bounded time budget; one that stays unstable says so in its statistics."""
from __future__ import annotations

import contextlib
import gc
import os
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
    other_load: Optional[float] = None   # cores other processes used while this was timed
    unstable: bool = False
    unstable_reason: str = ""
    attempts: int = 1    # measurements taken (re-measured while unstable)

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


def cpu_snapshot() -> Optional[tuple[float, float, float]]:
    """(CPU seconds busy on the whole machine, CPU seconds of this process, wall seconds),
    or None where ``/proc/stat`` cannot be read (not Linux)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except (OSError, ValueError):
        return None
    # user nice system idle iowait irq softirq steal: all but idle and iowait are busy
    busy = sum(fields[:8]) - fields[3] - fields[4]
    return busy / os.sysconf("SC_CLK_TCK"), time.process_time(), time.perf_counter()


def other_load(before, after) -> Optional[float]:
    """Cores used by other processes between two snapshots (steal time counts: another guest)."""
    if before is None or after is None or after[2] <= before[2]:
        return None
    busy, own, wall = (a - b for a, b in zip(after, before))
    # /proc/stat ticks are coarse (10 ms): short intervals read noisy, never below zero
    return max(0.0, (busy - own) / wall)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


@dataclass(frozen=True)
class Stability:
    """When a measurement is unstable, and how much re-measuring it may cost."""
    max_cv: float = 0.5            # per-call coefficient of variation above this: unstable
    max_other_load: float = 0.5    # cores other processes may use beyond those the timing leaves free
    retries: int = 2               # re-measurements of unstable variants at most ...
    budget_s: float = 60.0         # ... and at most this many seconds spent on them


def judge(s: LatencyStats, threads: int, rule: Stability, ncores: Optional[int] = None) -> str:
    """Why a measurement is unstable ("" when it is not)."""
    why = []
    if s.cv > rule.max_cv:
        why.append(f"CV {s.cv:.2f} > {rule.max_cv:g}")
    free = max(0, (ncores or cores()) - threads)
    if s.other_load is not None and s.other_load > free + rule.max_other_load:
        why.append(f"other processes used {s.other_load:.1f} of {ncores or cores()} cores "
                   f"while timing with {threads} thread(s)")
    return "; ".join(why)


def measure_stable(calls: dict[str, Callable[[], object]], *, threads: int, rule: Stability = Stability(),
                   ncores: Optional[int] = None, **kw) -> dict[str, LatencyStats]:
    """``measure_interleaved``, then re-measure the unstable variants (interleaved among
    themselves) while retries and budget last; a stable re-measurement replaces the first,
    otherwise the least varying attempt is kept and marked ``unstable`` with the reason."""
    t0 = time.perf_counter()
    out = measure_interleaved(calls, threads=threads, **kw)
    per_call = (time.perf_counter() - t0) / max(1, len(calls))   # seconds per variant measured
    reasons = {n: judge(s, threads, rule, ncores) for n, s in out.items()}
    attempts = {n: 1 for n in out}
    spent, stop = 0.0, ""
    for _ in range(rule.retries):
        again = sorted((n for n, why in reasons.items() if why), key=lambda n: -out[n].cv)
        if not again:
            break
        fits = int((rule.budget_s - spent) // per_call) if per_call > 0 else len(again)
        if fits < len(again):   # the most varying first, as many as the budget allows
            stop = f"; not re-measured further: retry budget {rule.budget_s:g} s"
            again = again[:fits]
            if not again:
                break
        t1 = time.perf_counter()
        fresh = measure_interleaved({n: calls[n] for n in again}, threads=threads, **kw)
        spent += time.perf_counter() - t1
        for n, s in fresh.items():
            attempts[n] += 1
            why = judge(s, threads, rule, ncores)
            if not why or s.cv < out[n].cv:
                out[n], reasons[n] = s, why
    for n, s in out.items():
        s.attempts = attempts[n]
        if reasons[n]:
            s.unstable = True
            s.unstable_reason = f"{reasons[n]} (after {attempts[n]} measurement(s){stop})"
    return out


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Python's cyclic garbage collector off while timing (as ``timeit`` does), after one
    collection: a process holding many models (compiled graphs are large object graphs)
    otherwise pays full collections inside whichever timed call triggers them."""
    was_enabled = gc.isenabled()
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def measure_interleaved(calls: dict[str, Callable[[], object]], *, batch_size: int, threads: int,
                        warmup: int, rounds: int, reps: int, device: str | torch.device = "cpu",
                        warmup_s: float = 0.5,
                        progress: Optional[Callable[[int], None]] = None,
                        timer: Optional[Callable[[Callable[[], object]], float]] = None,
                        snapshot: Optional[Callable[[], object]] = None) -> dict[str, LatencyStats]:
    """Time each zero-argument callable ``rounds * reps`` times, interleaved by round.

    Warm-up runs each callable at least ``warmup`` times and for at least ``warmup_s``
    seconds: allocator pools, oneDNN kernel caches and CPU clocks take longer than a
    few calls of a small model to settle. ``timer`` (ms of one call) and ``snapshot`` (see
    ``cpu_snapshot``) replace the clock and the load probe, in tests."""
    device = torch.device(device)
    timer = timer or _timer(device)
    snapshot = snapshot or (cpu_snapshot if device.type == "cpu" else (lambda: None))
    times: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    with num_threads(threads), torch.inference_mode(), _gc_paused():
        for name in names:
            t0, n = time.perf_counter(), 0
            while n < warmup or time.perf_counter() - t0 < warmup_s:
                calls[name]()
                n += 1
                if device.type == "cuda":
                    torch.cuda.synchronize(device)
        # one probe over all rounds: /proc/stat counts 10 ms ticks, too coarse for one block
        before = snapshot()
        for r in range(rounds):
            order = names[r % len(names):] + names[:r % len(names)]
            for name in order:
                for _ in range(reps):
                    times[name].append(timer(calls[name]))
            if progress:
                progress(1)
        load = other_load(before, snapshot())
    out = {name: summarize(ts, batch_size) for name, ts in times.items()}
    for s in out.values():
        s.other_load = load
    return out
