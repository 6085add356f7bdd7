"""How raincheck's costs grow: with jobs per request, with workers, and under overload.

raincheck only (``BENCH_PEER=raincheck``). ``test_overload`` is run once per
policy, each in a fresh process, so that its peak memory is its own.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import override_settings

import raincheck
import raincheck.testing
from benchmarks import jobs, memory, peers
from benchmarks.bench_micro import burst
from benchmarks.conftest import measure

TOTAL = 10_000  # jobs per throughput round
REQUEST_SIZES = (1, 10, 100, 1_000)
WORKERS = (1, 2, 4, 8, 16, 32)
IO_JOBS = 1_000  # jobs of 1 ms I/O per round

OVERLOAD_REQUESTS = 1_000
OVERLOAD_JOBS_PER_REQUEST = 100
OVERLOAD_QUEUE = 1_000
PAYLOAD = 1_024
# The policies, and "unbounded" (RAINCHECK_MAX_QUEUE = 0) to show what the bound saves.
OVERLOAD_CASES = ("block", "caller_runs", "drop", "drop_oldest", "unbounded")


@pytest.fixture(autouse=True)
def _raincheck_only(peer: peers.Peer) -> None:
    if peer.name != "raincheck":
        pytest.skip("scaling is measured for raincheck only")


@pytest.fixture
def fresh_pool() -> Iterator[None]:
    """Each case starts with no pool, so that it builds one with its own settings."""
    raincheck.shutdown()
    yield
    raincheck.shutdown()


@pytest.mark.parametrize("size", REQUEST_SIZES)
def test_throughput_by_request_size(benchmark: Any, peer: peers.Peer, size: int) -> None:
    """10,000 jobs arriving in requests of ``size`` jobs each, until all have run."""
    schedule = peer.schedulable(jobs.trivial)

    def target() -> None:
        jobs.DONE.clear()
        for start in range(0, TOTAL, size):
            peer.start_request()
            for i in range(start, start + size):
                schedule(i)
            peer.finish_request()
        peer.wait_done(TOTAL)

    measure(benchmark, target, budget=2.0, min_rounds=3, max_rounds=30)
    benchmark.extra_info["jobs"] = TOTAL


@pytest.mark.parametrize("workers", WORKERS)
def test_handoff_by_workers(benchmark: Any, peer: peers.Peer, workers: int) -> None:
    """The hand-off of a 10-job request, with a pool of ``workers`` threads."""
    schedule = peer.schedulable(jobs.trivial)
    waiting = [0]

    def setup() -> None:
        peer.wait_done(waiting[0])
        jobs.DONE.clear()
        peer.start_request()
        for i in range(10):
            schedule(i)
        waiting[0] = 10

    with override_settings(RAINCHECK_MAX_WORKERS=workers):
        raincheck.shutdown()
        measure(benchmark, peer.finish_request, setup, budget=0.5, min_rounds=10)
        peer.wait_done(10)
        raincheck.shutdown()


@pytest.mark.parametrize("workers", WORKERS)
def test_burst_by_workers(benchmark: Any, peer: peers.Peer, workers: int) -> None:
    """A 10,000-job burst of trivial jobs with ``workers`` threads: the GIL caps it."""
    schedule = peer.schedulable(jobs.trivial)
    with override_settings(RAINCHECK_MAX_WORKERS=workers):
        raincheck.shutdown()
        measure(benchmark, lambda: burst(peer, schedule), budget=1.0, min_rounds=3)
        benchmark.extra_info["jobs"] = TOTAL
        benchmark.extra_info["peak_threads"] = threading.active_count()
        raincheck.shutdown()


@pytest.mark.parametrize("workers", WORKERS)
def test_io_burst_by_workers(benchmark: Any, peer: peers.Peer, workers: int) -> None:
    """1,000 jobs of 1 ms I/O with ``workers`` threads: here workers do help."""
    schedule = peer.schedulable(jobs.io_1ms)

    def target() -> None:
        jobs.DONE.clear()
        peer.start_request()
        for i in range(IO_JOBS):
            schedule(i)
        peer.finish_request()
        peer.wait_done(IO_JOBS)

    with override_settings(RAINCHECK_MAX_WORKERS=workers):
        raincheck.shutdown()
        measure(benchmark, target, budget=1.0, min_rounds=2, max_rounds=10)
        benchmark.extra_info["jobs"] = IO_JOBS
        raincheck.shutdown()


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@pytest.mark.parametrize("case", OVERLOAD_CASES)
def test_overload(benchmark: Any, peer: peers.Peer, case: str) -> None:
    """100,000 jobs of 0.1 ms I/O carrying 1 KiB each, offered far faster than the
    pool runs them: 1,000 back-to-back requests of 100 jobs."""
    schedule = peer.schedulable(jobs.io_with_payload)
    options = {
        "RAINCHECK_MAX_QUEUE": 0 if case == "unbounded" else OVERLOAD_QUEUE,
        "RAINCHECK_BACKPRESSURE": "block" if case == "unbounded" else case,
    }
    handoffs: list[float] = []
    requests: list[float] = []
    timings: dict[str, float] = {}

    def target() -> None:
        started = time.perf_counter()
        for r in range(OVERLOAD_REQUESTS):
            request_started = time.perf_counter()
            peer.start_request()
            for i in range(OVERLOAD_JOBS_PER_REQUEST):
                schedule(r * OVERLOAD_JOBS_PER_REQUEST + i, b"x" * PAYLOAD)
            handoff_started = time.perf_counter()
            peer.finish_request()
            ended = time.perf_counter()
            handoffs.append(ended - handoff_started)
            requests.append(ended - request_started)
        timings["offered"] = time.perf_counter() - started
        raincheck.testing.wait_idle(120.0)
        timings["drained"] = time.perf_counter() - started

    with override_settings(**options):
        raincheck.shutdown()
        before = memory.rss_kib()
        memory.reset_peak()
        counted_from = raincheck.stats()
        benchmark.pedantic(target, rounds=1, iterations=1)
        peak = memory.peak_kib()
        stats = raincheck.stats()
        raincheck.shutdown()

    counts = {
        name: getattr(stats, name) - getattr(counted_from, name)
        for name in ("scheduled", "succeeded", "failed", "dropped", "ran_in_caller")
    }
    assert counts["scheduled"] == OVERLOAD_REQUESTS * OVERLOAD_JOBS_PER_REQUEST
    assert counts["succeeded"] + counts["failed"] + counts["dropped"] == counts["scheduled"]
    benchmark.extra_info.update(
        counts,
        jobs=OVERLOAD_REQUESTS * OVERLOAD_JOBS_PER_REQUEST,
        max_queue=options["RAINCHECK_MAX_QUEUE"],
        policy=options["RAINCHECK_BACKPRESSURE"],
        handoff_p50_s=statistics.median(handoffs),
        handoff_p99_s=percentile(handoffs, 0.99),
        handoff_max_s=max(handoffs),
        request_p50_s=statistics.median(requests),
        request_p99_s=percentile(requests, 0.99),
        offered_s=timings["offered"],
        drained_s=timings["drained"],
        rss_before_kib=before,
        peak_rss_kib=peak,
    )
