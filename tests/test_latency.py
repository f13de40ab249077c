import statistics
import time

import pytest
import torch

from harness.profiling.latency import Stability, measure_interleaved, measure_stable, summarize


def test_summary_statistics():
    s = summarize([4.0, 1.0, 3.0, 2.0, 10.0], batch_size=2)
    assert s.median_ms == 3.0 and s.min_ms == 1.0 and s.max_ms == 10.0 and s.n == 5
    assert s.mean_ms == 4.0
    assert s.cv == pytest.approx(statistics.stdev([1, 2, 3, 4, 10]) / 4.0)
    assert s.fps == pytest.approx(2 / 0.003)
    assert s.p90_ms == 10.0


def test_interleaved_rounds_rotate_and_count():
    order = []
    calls = {n: (lambda n=n: order.append(n)) for n in "abc"}
    stats = measure_interleaved(calls, batch_size=1, threads=1, warmup=1, warmup_s=0, rounds=3, reps=2)
    assert all(s.n == 6 for s in stats.values())
    timed = order[3:]  # after one warm-up call each
    rounds = [timed[i:i + 6] for i in range(0, 18, 6)]
    assert [r[0] for r in rounds] == ["a", "b", "c"]  # each round starts with the next variant
    assert torch.get_num_threads() >= 1


def test_threads_are_restored():
    before = torch.get_num_threads()
    measure_interleaved({"x": lambda: None}, batch_size=1, threads=1, warmup=0, warmup_s=0, rounds=1, reps=1)
    assert torch.get_num_threads() == before


def test_garbage_collector_is_paused_while_timing_and_restored():
    import gc
    seen = []
    assert gc.isenabled()
    measure_interleaved({"x": lambda: seen.append(gc.isenabled())}, batch_size=1, threads=1, warmup=1,
                        warmup_s=0, rounds=2, reps=2)
    assert seen and not any(seen) and gc.isenabled()


def _erratic():
    """A call whose duration swings between nothing and 20 ms: CV near 1 on any machine
    (load only lengthens the short calls)."""
    state = {"i": 0}

    def call():
        state["i"] += 1
        if state["i"] % 2:
            time.sleep(0.02)
    return call


def test_disturbed_measurement_is_remeasured_then_flagged():
    rule = Stability(max_cv=0.5, max_other_load=100, retries=2, budget_s=60)
    stats = measure_stable({"erratic": _erratic()}, batch_size=1, threads=1, rule=rule, warmup=0,
                           warmup_s=0, rounds=2, reps=4)
    s = stats["erratic"]
    assert s.unstable and s.attempts == 3
    assert s.unstable_reason.startswith("CV ") and "> 0.5" in s.unstable_reason
    assert "after 3 measurement(s)" in s.unstable_reason


def test_retry_budget_bounds_remeasuring():
    rule = Stability(max_cv=0.5, max_other_load=100, retries=5, budget_s=0)
    s = measure_stable({"erratic": _erratic()}, batch_size=1, threads=1, rule=rule, warmup=0,
                       warmup_s=0, rounds=2, reps=4)["erratic"]
    assert s.unstable and s.attempts == 1 and "retry budget 0 s" in s.unstable_reason


def _fake_clock(durations):
    """A timer that reports the given per-call durations (ms) in turn: no real timing."""
    it = iter(durations)

    def timer(fn):
        fn()
        return next(it)
    return timer


def test_steady_measurement_is_not_flagged_and_a_stable_retry_replaces_a_disturbed_one():
    rule = Stability(max_cv=0.5, max_other_load=100, retries=2, budget_s=60)
    steady = _fake_clock([2.0, 2.1, 1.9, 2.0] * 10)
    s = measure_stable({"a": lambda: None}, batch_size=1, threads=1, rule=rule, warmup=0, warmup_s=0,
                       rounds=2, reps=2, timer=steady, snapshot=lambda: None)["a"]
    assert not s.unstable and s.attempts == 1 and s.other_load is None
    once_disturbed = _fake_clock([0.5, 60.0, 0.5, 0.5] + [0.5, 0.52, 0.49, 0.5])
    s = measure_stable({"a": lambda: None}, batch_size=1, threads=1, rule=rule, warmup=0, warmup_s=0,
                       rounds=2, reps=2, timer=once_disturbed, snapshot=lambda: None)["a"]
    assert not s.unstable and s.attempts == 2 and s.median_ms == pytest.approx(0.5, abs=0.02)


def test_load_from_other_processes_flags_a_measurement():
    """A probe that says other processes kept 3 cores busy while 1 of 2 was timed."""
    clock = {"t": 0.0}

    def busy_machine():
        clock["t"] += 1.0
        return 3.0 * clock["t"], 0.0, clock["t"]      # (busy s, own s, wall s)
    rule = Stability(max_cv=10, max_other_load=0.5, retries=1, budget_s=60)
    s = measure_stable({"a": lambda: None}, batch_size=1, threads=1, rule=rule, ncores=2, warmup=0,
                       warmup_s=0, rounds=1, reps=3, timer=_fake_clock([1.0] * 6),
                       snapshot=busy_machine)["a"]
    assert s.other_load == pytest.approx(3.0)
    assert s.unstable and "other processes used 3.0 of 2 cores" in s.unstable_reason
    assert s.attempts == 2
