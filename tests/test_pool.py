"""The pool: bounded threads and queue, backpressure policies, futures, drain."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextvars import copy_context
from typing import Any

import pytest
from django.test import override_settings

import raincheck
from raincheck import process, signals, sizing
from raincheck import raincheck as decorate
from raincheck.backlog import MAX_BATCH, STEP_TIME, Backlog, Overflow
from raincheck.jobs import Job, run
from raincheck.pool import Pool
from raincheck.stats import Stats
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.helpers import (
    LineSpy,
    current_pool,
    hold_the_worker,
    in_thread,
    spy_on_idle,
    spy_on_room,
)
from tests.app.jobs import HOLD_LIMIT, Gate, thread_of

Received = list[dict[str, object]]


@decorate
def count_threads(i: int) -> None:
    """Record how many threads exist while this job runs."""
    jobs.record(str(threading.active_count()), str(i))


@decorate
def held_then_schedule(gate: Gate, value: str) -> None:
    """Wait for ``gate``, schedule ``remember(value)`` from this worker, then record."""
    gate.started.set()
    assert gate.release.wait(HOLD_LIMIT)
    jobs.remember.schedule(value)
    jobs.record(threading.current_thread().name, "outer-done")


@decorate
def remember_then_set(value: str, done: threading.Event) -> None:
    """Record ``value``, then set ``done``."""
    jobs.record(threading.current_thread().name, value)
    done.set()


class Latch:
    """``done`` is set once ``arrive()`` has been called ``count`` times."""

    def __init__(self, count: int) -> None:
        self.remaining = count
        self.lock = threading.Lock()
        self.done = threading.Event()

    def arrive(self) -> None:
        with self.lock:
            self.remaining -= 1
            if self.remaining == 0:
                self.done.set()


@decorate
def arrive(latch: Latch, value: str) -> None:
    """Record ``value`` and count down ``latch``."""
    jobs.record(threading.current_thread().name, value)
    latch.arrive()


@decorate
def now_and_then_slow(i: int) -> None:
    """Record ``i``; every 97th job also sleeps a millisecond (I/O), so batches end unevenly."""
    if i % 97 == 0:
        time.sleep(0.001)
    jobs.record(threading.current_thread().name, str(i))


@decorate
def meet(barrier: threading.Barrier, value: str) -> None:
    """Record ``value`` once ``barrier.parties`` jobs run at once (or fail at its timeout)."""
    barrier.wait()
    jobs.record(threading.current_thread().name, value)


def balanced(stats: Stats) -> bool:
    return stats.succeeded + stats.failed + stats.dropped == stats.scheduled


# -- through raincheck --------------------------------------------------------


@override_settings(RAINCHECK_MAX_WORKERS=4)
def test_burst_never_exceeds_max_workers_threads() -> None:
    """Thousands of jobs at once run on at most MAX_WORKERS new threads, each exactly once."""
    before = threading.active_count()
    for i in range(3000):
        count_threads.schedule(i)
    assert threading.active_count() <= before + 4
    wait_idle()
    assert max(int(count) for count, _ in jobs.calls) <= before + 4
    assert Counter(jobs.values()) == Counter(str(i) for i in range(3000))
    stats = raincheck.stats()
    assert stats.scheduled == stats.succeeded == 3000
    assert 1 <= stats.workers <= 4


@override_settings(RAINCHECK_MAX_WORKERS=2, RAINCHECK_MAX_QUEUE=10)
def test_burst_larger_than_the_queue_loses_nothing_under_block() -> None:
    """The default policy blocks for room, so a burst beyond MAX_QUEUE still runs every job."""
    for i in range(1000):
        jobs.remember.schedule(str(i))
    wait_idle()
    assert Counter(jobs.values()) == Counter(str(i) for i in range(1000))
    stats = raincheck.stats()
    assert stats.succeeded == stats.scheduled == 1000
    assert stats.dropped == 0


def test_threads_are_named_raincheck_n() -> None:
    """Pool threads are named ``raincheck-N``."""
    jobs.remember.schedule("named")
    wait_idle()
    assert re.fullmatch(r"raincheck-\d+", thread_of("named"))


@override_settings(RAINCHECK_MAX_WORKERS=1, RAINCHECK_MAX_QUEUE=2)
def test_stats_report_queued_running_and_workers() -> None:
    """``stats()`` counts scheduled, queued, running and worker threads as they are."""
    gate = hold_the_worker()
    jobs.remember.schedule("queued")
    stats = raincheck.stats()
    assert isinstance(stats, Stats)
    assert (stats.scheduled, stats.queued, stats.running, stats.workers) == (2, 1, 1, 1)
    assert (stats.succeeded, stats.failed, stats.dropped, stats.ran_in_caller) == (0, 0, 0, 0)
    gate.release.set()
    wait_idle()
    stats = raincheck.stats()
    assert (stats.scheduled, stats.queued, stats.running, stats.succeeded) == (2, 0, 0, 2)


@override_settings(
    RAINCHECK_MAX_WORKERS=1,
    RAINCHECK_MAX_QUEUE=2,
    RAINCHECK_BACKPRESSURE="block",
    RAINCHECK_BLOCK_TIMEOUT=0.05,
)
def test_block_runs_the_job_in_the_caller_after_the_timeout() -> None:
    """``block``: with the queue still full after BLOCK_TIMEOUT, the caller runs the job."""
    gate = hold_the_worker()
    jobs.remember.schedule("q1")
    jobs.remember.schedule("q2")
    jobs.remember.schedule("extra")
    assert jobs.calls == [(threading.current_thread().name, "extra")]
    assert not gate.release.is_set()
    assert raincheck.stats().ran_in_caller == 1
    gate.release.set()
    wait_idle()
    assert jobs.values() == ["extra", "held", "q1", "q2"]
    stats = raincheck.stats()
    assert stats.scheduled == 4
    assert balanced(stats)


@override_settings(
    RAINCHECK_MAX_WORKERS=1,
    RAINCHECK_MAX_QUEUE=2,
    RAINCHECK_BACKPRESSURE="block",
    RAINCHECK_BLOCK_TIMEOUT=30.0,
)
def test_block_waits_for_room_and_queues_the_job() -> None:
    """``block``: the caller waits for room and, when a worker frees some, queues the job."""
    gate = hold_the_worker()
    jobs.remember.schedule("q1")
    jobs.remember.schedule("q2")
    waiting = spy_on_room(current_pool())
    join = in_thread(lambda: jobs.remember.schedule("extra"))
    assert waiting.wait(HOLD_LIMIT)
    assert jobs.calls == []
    gate.release.set()
    join()
    wait_idle()
    assert jobs.values() == ["held", "q1", "q2", "extra"]
    assert thread_of("extra").startswith("raincheck-")
    stats = raincheck.stats()
    assert stats.ran_in_caller == 0
    assert balanced(stats)


@override_settings(
    RAINCHECK_MAX_WORKERS=1,
    RAINCHECK_MAX_QUEUE=1,
    RAINCHECK_BACKPRESSURE="block",
    RAINCHECK_BLOCK_TIMEOUT=3600.0,
)
def test_block_lets_at_most_max_workers_threads_wait_for_room() -> None:
    """``block``: once MAX_WORKERS threads wait for room, the next caller runs its job at once."""
    gate = hold_the_worker()
    jobs.remember.schedule("queued")
    waiting = spy_on_room(current_pool())
    first = in_thread(lambda: jobs.remember.schedule("waits"))
    assert waiting.wait(HOLD_LIMIT)
    # Without the bound this would wait for room for as long as the gate holds.
    second = in_thread(lambda: jobs.remember.schedule("runs in its caller"))
    second()
    assert jobs.values() == ["runs in its caller"]
    assert not thread_of("runs in its caller").startswith("raincheck-")
    gate.release.set()
    first()
    wait_idle()
    assert sorted(jobs.values()) == ["held", "queued", "runs in its caller", "waits"]
    stats = raincheck.stats()
    assert stats.ran_in_caller == 1
    assert balanced(stats)


@override_settings(
    RAINCHECK_MAX_WORKERS=1,
    RAINCHECK_MAX_QUEUE=1,
    RAINCHECK_BACKPRESSURE="block",
    RAINCHECK_BLOCK_TIMEOUT=60.0,
)
def test_block_on_a_worker_runs_the_job_there_without_waiting() -> None:
    """``block``: a job that schedules into a full queue runs the new job itself at once."""
    gate = Gate()
    held_then_schedule.schedule(gate, "inner")
    assert gate.started.wait(HOLD_LIMIT)
    jobs.remember.schedule("queued")
    gate.release.set()
    wait_idle(timeout=HOLD_LIMIT)  # waiting for room would take BLOCK_TIMEOUT (60 s)
    assert jobs.values() == ["inner", "outer-done", "queued"]
    assert thread_of("inner") == thread_of("outer-done")
    assert thread_of("inner").startswith("raincheck-")
    stats = raincheck.stats()
    assert stats.ran_in_caller == 1
    assert balanced(stats)


@override_settings(RAINCHECK_MAX_WORKERS=1, RAINCHECK_MAX_QUEUE=2)
@pytest.mark.parametrize(
    "overrides",
    [
        {"RAINCHECK_BACKPRESSURE": "caller_runs", "RAINCHECK_BLOCK_TIMEOUT": 60.0},
        {"RAINCHECK_BACKPRESSURE": "block", "RAINCHECK_BLOCK_TIMEOUT": 0},
    ],
    ids=["caller_runs", "block-without-timeout"],
)
def test_caller_runs_the_job_that_does_not_fit(overrides: dict[str, object]) -> None:
    """``caller_runs`` (and ``block`` with no timeout): the caller runs a job that does not fit."""
    with override_settings(**overrides):
        gate = hold_the_worker()
        jobs.remember.schedule("q1")
        jobs.remember.schedule("q2")
        jobs.remember.schedule("extra")
        assert jobs.calls == [(threading.current_thread().name, "extra")]
        assert not gate.release.is_set()
        gate.release.set()
        wait_idle()
    assert jobs.values() == ["extra", "held", "q1", "q2"]
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.ran_in_caller) == (4, 4, 1)
    assert balanced(stats)


@override_settings(RAINCHECK_MAX_WORKERS=1, RAINCHECK_MAX_QUEUE=2, RAINCHECK_BACKPRESSURE="drop")
def test_drop_discards_the_new_job_and_reports_it(
    caplog: pytest.LogCaptureFixture, received: Callable[..., Received]
) -> None:
    """``drop``: the job that does not fit is discarded, logged, signalled and counted."""
    dropped = received(signals.job_dropped)
    gate = hold_the_worker()
    jobs.remember.schedule("q1")
    jobs.remember.schedule("q2")
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        jobs.remember.schedule("extra")
    [warning] = [r for r in caplog.records if r.name == "raincheck"]
    assert warning.levelno == logging.WARNING
    assert "tests.app.jobs.remember" in warning.getMessage()
    assert dropped == [
        {
            "signal": signals.job_dropped,
            "sender": jobs.remember.func,
            "args": ("extra",),
            "kwargs": {},
            "reason": "drop",
        }
    ]
    gate.release.set()
    wait_idle()
    assert jobs.values() == ["held", "q1", "q2"]
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.dropped) == (4, 3, 1)
    assert balanced(stats)


@override_settings(
    RAINCHECK_MAX_WORKERS=1, RAINCHECK_MAX_QUEUE=2, RAINCHECK_BACKPRESSURE="drop_oldest"
)
def test_drop_oldest_discards_the_oldest_queued_job(
    caplog: pytest.LogCaptureFixture, received: Callable[..., Received]
) -> None:
    """``drop_oldest``: the oldest queued job makes room for the new one, and is reported."""
    dropped = received(signals.job_dropped)
    gate = hold_the_worker()
    jobs.remember.schedule("q1")
    jobs.remember.schedule("q2")
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        jobs.remember.schedule("q3")
        jobs.remember.schedule("q4")
    assert [d["args"] for d in dropped] == [("q1",), ("q2",)]
    assert {d["reason"] for d in dropped} == {"drop_oldest"}
    assert {d["sender"] for d in dropped} == {jobs.remember.func}
    warnings = [r for r in caplog.records if r.name == "raincheck"]
    assert len(warnings) == 2
    assert all("tests.app.jobs.remember" in r.getMessage() for r in warnings)
    gate.release.set()
    wait_idle()
    assert jobs.values() == ["held", "q3", "q4"]
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.dropped) == (5, 3, 2)
    assert balanced(stats)


@override_settings(RAINCHECK_MAX_WORKERS=1, RAINCHECK_MAX_QUEUE=0, RAINCHECK_BACKPRESSURE="drop")
def test_max_queue_zero_means_unbounded() -> None:
    """With MAX_QUEUE 0 nothing is ever dropped, however many jobs wait."""
    gate = hold_the_worker()
    for i in range(500):
        jobs.remember.schedule(str(i))
    assert raincheck.stats().queued == 500
    gate.release.set()
    wait_idle()
    stats = raincheck.stats()
    assert (stats.succeeded, stats.dropped) == (501, 0)


@override_settings(
    RAINCHECK_MAX_WORKERS=1,
    RAINCHECK_MAX_QUEUE=2,
    RAINCHECK_BACKPRESSURE="block",
    RAINCHECK_BLOCK_TIMEOUT=float("inf"),
)
def test_block_with_an_infinite_timeout_waits_for_room() -> None:
    """BLOCK_TIMEOUT ``float("inf")`` passes the checks, so it must mean "wait for room"."""
    gate = hold_the_worker()
    jobs.remember.schedule("q1")
    jobs.remember.schedule("q2")
    waiting = spy_on_room(current_pool())
    join = in_thread(lambda: jobs.remember.schedule("extra"))
    assert waiting.wait(HOLD_LIMIT)
    gate.release.set()
    join()
    wait_idle()
    assert jobs.values() == ["held", "q1", "q2", "extra"]


def test_next_hand_off_after_shutdown_creates_a_new_pool() -> None:
    """After ``shutdown()`` a new pool is created on demand; counters carry over."""
    jobs.remember.schedule("first")
    wait_idle()
    first_pool = current_pool()
    raincheck.shutdown()
    assert raincheck.stats().succeeded == 1
    jobs.remember.schedule("second")
    wait_idle()
    assert current_pool() is not first_pool
    assert first_pool._closed
    assert jobs.values() == ["first", "second"]
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded) == (2, 2)


def test_shutdown_without_a_pool_does_nothing() -> None:
    """``shutdown()`` before any job ever ran neither fails nor creates a pool."""
    raincheck.shutdown()
    assert process.current().pool is None


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_jobs_handed_off_while_shutting_down_run_in_the_caller() -> None:
    """A job scheduled while ``shutdown()`` drains runs in the caller, never lost."""
    gate = hold_the_worker()
    pool = current_pool()
    draining = spy_on_idle(pool)
    join = in_thread(lambda: raincheck.shutdown(timeout=HOLD_LIMIT))
    assert draining.wait(HOLD_LIMIT)
    assert pool._closed
    jobs.remember.schedule("late")
    assert jobs.calls == [(threading.current_thread().name, "late")]
    gate.release.set()
    join()
    assert jobs.values() == ["late", "held"]
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.ran_in_caller) == (2, 2, 1)


def test_shutdown_returns_at_its_deadline_and_logs_unfinished_jobs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``shutdown(timeout)`` does not wait for a hung job; it logs how many and which."""
    gate = hold_the_worker()
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        raincheck.shutdown(timeout=0.05)
    assert not gate.release.is_set()
    [warning] = [r for r in caplog.records if r.name == "raincheck"]
    assert warning.levelno == logging.WARNING
    assert "1 job(s)" in warning.getMessage()
    assert "tests.app.jobs.held" in warning.getMessage()


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_raising_max_workers_starts_more_workers() -> None:
    """Overriding MAX_WORKERS upwards lets a queued job start beside a running one."""
    first = hold_the_worker()
    second = Gate()
    jobs.held.schedule(second, "second")
    assert raincheck.stats().queued == 1
    with override_settings(RAINCHECK_MAX_WORKERS=2):
        assert second.started.wait(HOLD_LIMIT)
        assert not first.release.is_set()
        assert raincheck.stats().workers == 2
        first.release.set()
        second.release.set()
        wait_idle()


@override_settings(RAINCHECK_MAX_WORKERS=2)
def test_lowering_max_workers_limits_concurrency_even_under_load() -> None:
    """After MAX_WORKERS is lowered, busy extra workers leave instead of taking more jobs."""
    a, b, c, d = Gate(), Gate(), Gate(), Gate()
    jobs.held.schedule(a, "a")
    jobs.held.schedule(b, "b")
    assert a.started.wait(HOLD_LIMIT)
    assert b.started.wait(HOLD_LIMIT)
    jobs.held.schedule(c, "c")
    jobs.held.schedule(d, "d")
    with override_settings(RAINCHECK_MAX_WORKERS=1):
        a.release.set()
        b.release.set()
        assert c.started.wait(HOLD_LIMIT)
        # One worker: d can only start after c has finished.
        assert not d.started.wait(0.3)
        c.release.set()
        assert d.started.wait(HOLD_LIMIT)
        d.release.set()
        wait_idle()
    assert sorted(jobs.values()) == ["a", "b", "c", "d"]


# -- The Pool on its own -------------------------------------------------------


@pytest.fixture
def make_pool() -> Iterator[Callable[[int], Pool]]:
    """Build pools that are released and drained after the test."""
    made: list[Pool] = []

    def make(max_workers: int) -> Pool:
        pool = Pool(max_workers, run_job=run)
        made.append(pool)
        return pool

    yield make
    for gate in Gate.opened:
        gate.release.set()
    for pool in made:
        pool.drain(HOLD_LIMIT)


def put(pool: Pool, batch: list[Job], **options: Any) -> Overflow | None:
    """``pool.put()``, counting as raincheck's hand-off does."""
    pool.counters.add(scheduled=len(batch))
    overflow = pool.put(batch, **options)
    if overflow is not None:
        pool.counters.add(dropped=len(overflow.dropped), ran_in_caller=len(overflow.run_in_caller))
    return overflow


def pool_stats(pool: Pool) -> Stats:
    queued, running, workers = pool.load()
    return pool.counters.snapshot(queued=queued, running=len(running), workers=workers)


def job(value: str) -> Job:
    return (jobs.remember, (value,), {}, copy_context())


def held_job(gate: Gate, value: str) -> Job:
    return (jobs.held, (gate, value), {}, copy_context())


def test_pool_rejects_fewer_than_one_worker() -> None:
    """A pool needs at least one worker."""
    with pytest.raises(ValueError, match="max_workers"):
        Pool(0, run_job=run)


def test_pool_burst_stays_within_max_workers(
    make_pool: Callable[[int], Pool],
) -> None:
    """Handing off 5000 jobs at once starts no more than ``max_workers`` threads."""
    pool = make_pool(3)
    before = threading.active_count()
    put(pool, [(count_threads, (i,), {}, copy_context()) for i in range(5000)])
    assert threading.active_count() <= before + 3
    assert pool.wait_idle(HOLD_LIMIT)
    assert max(int(count) for count, _ in jobs.calls) <= before + 3
    assert Counter(jobs.values()) == Counter(str(i) for i in range(5000))
    stats = pool_stats(pool)
    assert stats.succeeded == stats.scheduled == 5000
    assert stats.workers <= 3


def test_drain_returns_the_unfinished_jobs_at_its_deadline(
    make_pool: Callable[[int], Pool],
) -> None:
    """``drain(timeout)`` returns the running and queued jobs it could not wait for.

    Both count as dropped then, the running one too: at exit it never ends. If
    it does end later (after ``shutdown()``), it is not counted a second time.
    """
    pool = make_pool(1)
    gate = Gate()
    stuck, waiting = held_job(gate, "stuck"), job("waiting")
    put(pool, [stuck, waiting])
    assert gate.started.wait(HOLD_LIMIT)
    unfinished = pool.drain(0.05)
    assert not gate.release.is_set()
    assert unfinished == [stuck, waiting]
    stats = pool_stats(pool)
    assert (stats.queued, stats.running, stats.dropped) == (0, 1, 2)
    assert balanced(stats)
    gate.release.set()
    assert pool.wait_idle(HOLD_LIMIT)
    assert jobs.values() == ["stuck"]
    stats = pool_stats(pool)
    assert (stats.succeeded, stats.dropped) == (0, 2)
    assert balanced(stats)


def test_a_drains_deadline_counts_the_jobs_a_batch_has_run_so_far(
    make_pool: Callable[[int], Pool],
) -> None:
    """A worker counts a batch once it has run all of it; a deadline cannot wait for that."""
    pool = make_pool(1)
    gate = Gate()
    stuck, after = held_job(gate, "stuck"), job("after")
    # The worker starts with all five queued, and takes them as one batch.
    put(pool, [*(job(str(i)) for i in range(3)), stuck, after])
    assert gate.started.wait(HOLD_LIMIT)
    assert pool.drain(0.05) == [stuck, after]
    stats = pool_stats(pool)
    assert (stats.succeeded, stats.failed, stats.dropped) == (3, 0, 2)
    assert balanced(stats)
    gate.release.set()
    assert pool.wait_idle(HOLD_LIMIT)
    assert balanced(pool_stats(pool))


def test_drain_waits_for_every_job_that_finishes_in_time(
    make_pool: Callable[[int], Pool],
) -> None:
    """``drain()`` runs every queued job when they finish before the deadline."""
    pool = make_pool(2)
    put(pool, [job(str(i)) for i in range(100)])
    assert pool.drain(HOLD_LIMIT) == []
    assert sorted(jobs.values(), key=int) == [str(i) for i in range(100)]


def test_drain_runs_what_is_left_on_every_thread_the_cap_allows(
    make_pool: Callable[[int], Pool],
) -> None:
    """A drain must finish the queue by its deadline: it starts threads up to
    the cap at once, not only as far as the pool had judged useful.

    Eight jobs that only finish once all eight run together: the pool starts
    its core of four for them, and they wait for the rest, which the drain starts.
    """
    pool = make_pool(8)
    assert sizing.CORE_THREADS == 4
    barrier = threading.Barrier(8, timeout=HOLD_LIMIT)
    put(pool, [(meet, (barrier, str(i)), {}, copy_context()) for i in range(8)])
    assert pool_stats(pool).workers == 4
    assert pool.drain(HOLD_LIMIT) == []
    assert sorted(jobs.values()) == [str(i) for i in range(8)]
    stats = pool_stats(pool)
    assert (stats.succeeded, stats.failed, stats.dropped) == (8, 0, 0)


def test_a_stop_signal_gives_a_busy_pool_every_thread_the_cap_allows(
    make_pool: Callable[[int], Pool],
) -> None:
    """Once the process is stopping (``stop_by`` is finite), the next step a
    worker ends with jobs waiting starts threads up to the cap: the queue must
    be run by the stop's deadline, with or without a drain yet."""
    stop_by = math.inf
    pool = Pool(8, run_job=run, stop_by=lambda: stop_by)
    try:
        barrier = threading.Barrier(8, timeout=HOLD_LIMIT)
        gate = Gate()
        put(pool, [held_job(gate, "first")])
        assert gate.started.wait(HOLD_LIMIT)
        put(pool, [(meet, (barrier, str(i)), {}, copy_context()) for i in range(8)])
        stop_by = time.monotonic() + HOLD_LIMIT
        gate.release.set()  # its step ends with the eight waiting
        assert pool.wait_idle(HOLD_LIMIT)
        stats = pool_stats(pool)
        assert (stats.succeeded, stats.failed) == (9, 0)
    finally:
        pool.drain(HOLD_LIMIT)


def test_hand_off_after_drain_returns_the_jobs_to_the_caller(
    make_pool: Callable[[int], Pool],
) -> None:
    """Once draining began, ``hand_off`` queues nothing and gives the jobs back to run."""
    pool = make_pool(1)
    assert pool.drain(HOLD_LIMIT) == []
    late = job("late")
    result = put(pool, [late])
    assert result is not None
    assert result.run_in_caller == [late]
    assert result.dropped == []
    stats = pool_stats(pool)
    assert (stats.scheduled, stats.ran_in_caller, stats.queued) == (1, 1, 0)


# -- batches: a worker takes a share of a long queue in one step ---------------


def test_jobs_behind_a_slow_job_in_a_batch_go_to_an_idle_worker(
    make_pool: Callable[[int], Pool],
) -> None:
    """A batch's jobs do not wait behind its slow first job while another worker is idle."""
    pool = make_pool(2)
    gate, latch = Gate(), Latch(39)
    slow = held_job(gate, "slow")
    put(pool, [slow, *[(arrive, (latch, str(i)), {}, copy_context()) for i in range(39)]])
    # The worker holding the slow job took a batch of the 40 (up to 16): the
    # other worker runs its own share, then the rest of that batch.
    assert latch.done.wait(HOLD_LIMIT), f"{latch.remaining} jobs stuck behind the slow one"
    assert not gate.release.is_set()
    assert pool_stats(pool).running == 1
    gate.release.set()
    assert pool.wait_idle(HOLD_LIMIT)
    assert Counter(jobs.values()) == Counter(["slow", *(str(i) for i in range(39))])
    stats = pool_stats(pool)
    assert stats.succeeded == stats.scheduled == 40


def test_a_drain_deadline_drops_the_unstarted_rest_of_a_batch(
    make_pool: Callable[[int], Pool],
) -> None:
    """Jobs a worker took in a batch but never started are reported, dropped and never run."""
    pool = make_pool(1)
    gate = Gate()
    stuck, rest = held_job(gate, "stuck"), [job(str(i)) for i in range(5)]
    put(pool, [stuck, *rest])  # one worker takes all six in one step
    assert gate.started.wait(HOLD_LIMIT)
    assert pool_stats(pool).queued == 5
    assert pool.drain(0.05) == [stuck, *rest]
    stats = pool_stats(pool)
    assert (stats.queued, stats.running, stats.dropped) == (0, 1, 6)  # and stuck
    gate.release.set()
    assert pool.wait_idle(HOLD_LIMIT)
    assert jobs.values() == ["stuck"]
    assert balanced(pool_stats(pool))


def test_max_queue_counts_the_jobs_waiting_in_a_batch(
    make_pool: Callable[[int], Pool],
) -> None:
    """A batch's unstarted jobs still take room in ``MAX_QUEUE``: ``drop`` drops the new job."""
    pool = make_pool(1)
    gate = Gate()
    put(pool, [held_job(gate, "held"), job("a"), job("b"), job("c")], max_queue=4)
    assert gate.started.wait(HOLD_LIMIT)  # "a" to "c" wait in the worker's batch
    late = [job("d"), job("e")]
    result = put(pool, late, max_queue=4, policy="drop")
    assert result is not None
    assert result.dropped == late[1:]
    gate.release.set()
    assert pool.wait_idle(HOLD_LIMIT)
    assert jobs.values() == ["held", "a", "b", "c", "d"]
    assert balanced(pool_stats(pool))


def test_drop_oldest_drops_the_oldest_job_even_from_a_batch(
    make_pool: Callable[[int], Pool],
) -> None:
    """``drop_oldest`` discards the oldest unstarted job, whether queued or in a batch."""
    pool = make_pool(1)
    gate = Gate()
    put(pool, [held_job(gate, "held"), job("a"), job("b"), job("c")], max_queue=4)
    assert gate.started.wait(HOLD_LIMIT)
    put(pool, [job("d")], max_queue=4, policy="drop_oldest")
    result = put(pool, [job("e")], max_queue=4, policy="drop_oldest")
    assert result is not None
    assert result.dropped == [job("a")]
    gate.release.set()
    assert pool.wait_idle(HOLD_LIMIT)
    assert jobs.values() == ["held", "b", "c", "d", "e"]
    assert balanced(pool_stats(pool))


def test_uneven_batches_run_every_job_exactly_once(
    make_pool: Callable[[int], Pool],
) -> None:
    """Bursts whose jobs take uneven time, so idle workers reclaim batches: each job runs once."""
    pool = make_pool(4)
    for burst in range(5):
        jobs.calls.clear()
        put(pool, [(now_and_then_slow, (i,), {}, copy_context()) for i in range(2000)])
        assert pool.wait_idle(HOLD_LIMIT)
        assert Counter(jobs.values()) == Counter(str(i) for i in range(2000)), f"burst {burst}"
    stats = pool_stats(pool)
    assert stats.succeeded == stats.scheduled == 10_000
    assert balanced(stats)


def test_block_serves_waiting_threads_in_arrival_order(
    make_pool: Callable[[int], Pool],
) -> None:
    """``block``: a thread waiting for room queues all its jobs before a later one queues
    any, and a newcomer never takes room from those already waiting (no request waits
    much longer than the others)."""
    pool = make_pool(2)
    full = {"max_queue": 1, "policy": "block", "block_timeout": HOLD_LIMIT}
    first, second = Gate(), Gate()
    for gate, name in ((first, "held 1"), (second, "held 2")):
        put(pool, [(jobs.held, (gate, name), {}, copy_context())], **full)
        assert gate.started.wait(HOLD_LIMIT)

    def job(value: str) -> Job:
        return (jobs.remember, (value,), {}, copy_context())

    put(pool, [job("queued")], **full)
    line = LineSpy()
    pool._line = line
    a = in_thread(lambda: put(pool, [job("a1"), job("a2")], **full))
    assert line.joins.acquire(timeout=HOLD_LIMIT)
    last = threading.Event()
    b1: Job = (remember_then_set, ("b1", last), {}, copy_context())
    b = in_thread(lambda: put(pool, [b1], **full))
    assert line.joins.acquire(timeout=HOLD_LIMIT)
    first.release.set()  # one worker now runs the queue, in its order
    a()
    b()
    assert last.wait(HOLD_LIMIT)
    second.release.set()
    assert pool.wait_idle(HOLD_LIMIT)
    assert jobs.values() == ["held 1", "queued", "a1", "a2", "b1", "held 2"]
    stats = pool_stats(pool)
    assert (stats.succeeded, stats.ran_in_caller, stats.dropped) == (6, 0, 0)


def test_slow_jobs_are_taken_one_at_a_time_and_short_ones_in_batches() -> None:
    """A batch of slow jobs would make a step of seconds: the jobs at its end wait for
    those before it, and the thread budget, which counts a step's jobs when it ends,
    would see half-second windows with nothing done, then a burst (raincheck.sizing)."""
    backlog = Backlog()
    backlog.queue.extend((jobs.remember, (str(i),), {}, copy_context()) for i in range(100))
    worker = 1

    def step(seconds_per_job: float) -> int:
        """Take a step, run it in ``seconds_per_job`` per job; how many jobs it took."""
        _, batch = backlog.take(worker, workers=1)
        taken = 1 + (len(batch) if batch is not None else 0)
        backlog.done(worker, taken, taken * seconds_per_job)
        return taken

    assert step(0.2) == MAX_BATCH  # nothing known yet: a batch
    assert step(0.2) == 1  # jobs of 200 ms, one per step
    assert step(0.2) == 1
    assert step(0.00001) == 1  # the step that shows they got short...
    assert step(0.00001) == MAX_BATCH  # ...lets the next take a batch
    assert step(0.01) == MAX_BATCH
    assert step(0.01) == round(STEP_TIME / 0.01)  # jobs of 10 ms: a step of 50 ms
