"""What one request pays, and how fast a burst of jobs gets done, for one peer.

Run once per peer, each in its own process (``benchmarks/run.py`` does it):
``BENCH_PEER=raincheck pytest benchmarks/bench_micro.py -p no:raincheck --ds=...``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from django.test import override_settings

from benchmarks import jobs, memory, peers
from benchmarks.conftest import measure

CALLS = 1_000  # schedule() calls per timed round
BURST = 10_000  # jobs in one request for the burst figure
HANDOFF_SIZES = (0, 1, 10, 100, 1_000)
INLINE_JOBS = 10


def calls_of(func: Callable[[int], object]) -> Callable[[], None]:
    """``CALLS`` calls of ``func(i)``, unrolled tenfold so the loop costs little."""

    def target() -> None:
        f = func
        for i in range(CALLS // 10):
            f(i)
            f(i)
            f(i)
            f(i)
            f(i)
            f(i)
            f(i)
            f(i)
            f(i)
            f(i)

    return target


def test_bare_call(benchmark: Any, peer: peers.Peer) -> None:
    """The floor: a plain function that appends its arguments to a list."""
    calls: list[tuple[tuple[Any, ...], dict[str, Any]]] = []

    def bare(*args: Any, **kwargs: Any) -> None:
        calls.append((args, kwargs))

    measure(benchmark, calls_of(bare), calls.clear, budget=1.0, calls=CALLS)


def test_schedule(benchmark: Any, peer: peers.Peer) -> None:
    """``schedule()`` inside a request (the jobs are discarded, never run)."""
    schedule = peer.schedulable(jobs.trivial)

    def setup() -> None:
        peer.discard()
        peer.finish_request()
        jobs.DONE.clear()  # the ImmediateBackend ran them inside enqueue()
        peer.start_request()

    try:
        measure(benchmark, calls_of(schedule), setup, budget=1.0, calls=CALLS)
    finally:
        peer.discard()
        peer.finish_request()


@pytest.mark.parametrize("size", HANDOFF_SIZES)
def test_handoff(benchmark: Any, peer: peers.Peer, size: int) -> None:
    """What the request thread spends in ``request_finished`` for a request of ``size`` jobs."""
    schedule = peer.schedulable(jobs.trivial)
    waiting = [0]

    def setup() -> None:
        peer.wait_done(waiting[0])  # the previous round's jobs, so rounds do not overlap
        jobs.DONE.clear()
        peer.start_request()
        for i in range(size):
            schedule(i)
        waiting[0] = size

    measure(benchmark, peer.finish_request, setup, budget=0.8, min_rounds=10)
    peer.wait_done(waiting[0])


def burst(peer: peers.Peer, schedule: Callable[[int], object]) -> None:
    """``BURST`` jobs scheduled in one request, until the last one has run."""
    jobs.DONE.clear()
    peer.start_request()
    for i in range(BURST):
        schedule(i)
    peer.finish_request()
    peer.wait_done(BURST)


def test_burst(benchmark: Any, peer: peers.Peer) -> None:
    """Throughput of a 10,000-job burst; then an untimed round for peak threads and memory."""
    schedule = peer.schedulable(jobs.trivial)
    measure(benchmark, lambda: burst(peer, schedule), budget=2.5, min_rounds=3, max_rounds=30)
    benchmark.extra_info["jobs"] = BURST

    counting = peer.schedulable(jobs.counting)
    before = memory.rss_kib()
    memory.reset_peak()
    burst(peer, counting)
    benchmark.extra_info["rss_before_kib"] = before
    benchmark.extra_info["peak_rss_kib"] = memory.peak_kib()
    benchmark.extra_info["peak_threads"] = max(*jobs.THREADS_SEEN, threading.active_count())
    benchmark.extra_info["threads_used"] = len(jobs.THREAD_NAMES)
    if peer.name == "raincheck":
        from raincheck import conf

        benchmark.extra_info["max_workers"] = conf.get().max_workers


def test_inline(benchmark: Any, peer: peers.Peer) -> None:
    """``RAINCHECK_RUN_ASYNC = False``: a request's jobs run in its own thread at its end."""
    if peer.name not in peers.INLINE_PEERS:
        pytest.skip(f"{peer.name} has no inline mode")
    schedule = peer.schedulable(jobs.trivial)

    def setup() -> None:
        jobs.DONE.clear()
        peer.start_request()
        for i in range(INLINE_JOBS):
            schedule(i)

    with override_settings(RAINCHECK_RUN_ASYNC=False):
        measure(benchmark, peer.finish_request, setup, budget=0.5, calls=INLINE_JOBS)
    assert len(jobs.DONE) == INLINE_JOBS
