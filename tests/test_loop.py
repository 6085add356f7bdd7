"""Async jobs await together on raincheck's event loop, within a bound, and drain on time."""

from __future__ import annotations

import asyncio
import logging
import threading

import pytest
from django.test import override_settings

import raincheck
from raincheck import process
from raincheck import raincheck as decorate
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.helpers import ConditionSpy, current_pool, in_thread, spy_on_idle
from tests.app.jobs import HOLD_LIMIT, Gate

state = {"now": 0, "peak": 0}
lock = threading.Lock()
threads: set[str] = set()


@decorate
async def nap(seconds: float) -> None:
    with lock:
        state["now"] += 1
        state["peak"] = max(state["peak"], state["now"])
        threads.add(threading.current_thread().name)
    await asyncio.sleep(seconds)
    with lock:
        state["now"] -= 1


@decorate
async def forever() -> None:
    await asyncio.Event().wait()


@pytest.fixture(autouse=True)
def _reset() -> None:
    state.update(now=0, peak=0)
    threads.clear()


def test_many_async_jobs_await_at_once_on_one_thread() -> None:
    """200 async jobs that each await: they overlap on one thread, and all succeed."""
    for _ in range(200):
        nap.schedule(0.05)
    wait_idle(HOLD_LIMIT)
    assert state["peak"] > 10
    assert threads == {"raincheck-loop"}
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.workers) == (200, 200, 0)


@override_settings(RAINCHECK_ASYNC_CONCURRENCY=5)
def test_async_concurrency_bounds_the_jobs_awaiting_at_once() -> None:
    """No more than RAINCHECK_ASYNC_CONCURRENCY async jobs run at once; the rest wait."""
    for _ in range(40):
        nap.schedule(0.01)
    wait_idle(HOLD_LIMIT)
    assert state["peak"] == 5
    assert raincheck.stats().succeeded == 40


def test_the_drain_cancels_unfinished_async_jobs_and_names_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At the deadline, async jobs still awaiting are cancelled, named, and counted."""
    caplog.set_level(logging.WARNING, logger="raincheck")
    forever.schedule()
    nap.schedule(0.0)
    raincheck.shutdown(timeout=0.5)
    assert caplog.text.endswith(
        "did not finish within the 0.5 s shutdown timeout: "
        "async jobs cancelled: tests.test_loop.forever\n"
    )
    assert "ERROR" not in caplog.text  # not the job's failure: the drain's doing
    stats = raincheck.stats()
    assert stats.succeeded + stats.failed + stats.dropped == stats.scheduled == 2
    assert (stats.failed, stats.dropped) == (0, 1)


@decorate
async def counted_start(started: list[int], i: int) -> None:
    started.append(i)
    await asyncio.Event().wait()


@override_settings(RAINCHECK_ASYNC_CONCURRENCY=2)
def test_no_async_job_starts_after_the_drains_deadline(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Cancelling the running jobs frees their places: no waiting job may take one.

    And a long line of waiting jobs is dropped at once: the counts add up when
    the drain returns.
    """
    caplog.set_level(logging.WARNING, logger="raincheck")
    started: list[int] = []
    for i in range(5000):
        counted_start.schedule(started, i)
    raincheck.shutdown(timeout=0.2)
    assert started == [0, 1]
    assert caplog.text.endswith("async jobs cancelled: tests.test_loop.counted_start (x5000)\n")
    assert "ERROR" not in caplog.text
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.failed, stats.dropped) == (5000, 0, 0, 5000)


@decorate
async def block_the_loop(gate: Gate) -> None:
    """A sync wait in an async job: raincheck's loop thread itself stops."""
    gate.started.set()
    gate.release.wait(HOLD_LIMIT)


def test_async_jobs_the_blocked_loop_never_started_are_dropped_and_named(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """At the deadline, accepted jobs the loop never made tasks of are not lost silently."""
    caplog.set_level(logging.WARNING, logger="raincheck")
    gate = Gate()
    block_the_loop.schedule(gate)
    assert gate.started.wait(HOLD_LIMIT)
    nap.schedule(0.0)
    raincheck.shutdown(timeout=0.2)
    assert caplog.text.endswith(
        "async jobs cancelled: tests.test_loop.block_the_loop, tests.test_loop.nap\n"
    )
    assert raincheck.stats().dropped == 1


@override_settings(RAINCHECK_ASYNC_CONCURRENCY=1, RAINCHECK_MAX_QUEUE=2)
def test_async_jobs_past_the_queue_bound_follow_the_backpressure_policy() -> None:
    """Waiting async jobs count against RAINCHECK_MAX_QUEUE; the rest run in the caller."""
    for _ in range(6):
        nap.schedule(0.02)
    wait_idle(HOLD_LIMIT)
    stats = raincheck.stats()
    assert stats.succeeded == stats.scheduled == 6
    assert stats.ran_in_caller >= 1


@decorate
async def hand_to_the_pool(go: threading.Event, gate: Gate) -> None:
    """Once told, schedule a sync job, which runs on the pool."""
    await asyncio.to_thread(go.wait, HOLD_LIMIT)
    jobs.held.schedule(gate, "from the loop")


def test_wait_idle_waits_for_what_an_async_job_hands_to_the_pool() -> None:
    """The pool was idle when wait_idle() looked; a job on the loop then gave it work."""
    jobs.remember.schedule("make the pool")
    jobs.remember_async.schedule("make the loop")
    wait_idle(HOLD_LIMIT)
    waits_on_the_pool = spy_on_idle(current_pool())
    loop = process.current().loop
    assert loop is not None
    loop._idle = waits_on_the_loop = ConditionSpy(loop.lock)
    go, gate = threading.Event(), Gate()
    hand_to_the_pool.schedule(go, gate)
    join = in_thread(lambda: wait_idle(HOLD_LIMIT))
    assert waits_on_the_loop.waiting.wait(HOLD_LIMIT)  # past the idle pool
    go.set()
    assert gate.started.wait(HOLD_LIMIT)
    assert waits_on_the_pool.wait(HOLD_LIMIT), "wait_idle() returned with a job running"
    gate.release.set()
    join()
    assert "from the loop" in jobs.values()
