import statistics

import pytest
import torch

from harness.profiling.latency import measure_interleaved, summarize


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
