"""Async jobs that find no room on the event loop run in the caller, awaited together
(raincheck.together): the caller is held for the longest of them, not their sum."""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable

import pytest
from django.test import Client, override_settings

import raincheck
from raincheck import raincheck as decorate
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.helpers import in_thread
from tests.app.jobs import HOLD_LIMIT, Gate
from tests.app.views import hooks

# One job awaiting on the loop and one waiting for its turn: the loop is full.
FULL = {"RAINCHECK_ASYNC_CONCURRENCY": 1, "RAINCHECK_MAX_QUEUE": 1}

meeting = {"arrived": 0}
everyone: list[asyncio.Event] = []


@decorate
async def hold_the_loop(gate: Gate) -> None:
    gate.started.set()
    await asyncio.to_thread(gate.release.wait, HOLD_LIMIT)


@decorate
async def meet(expected: int) -> None:
    """Arrive, then wait until ``expected`` jobs have: only jobs awaited at once meet."""
    meeting["arrived"] += 1
    if meeting["arrived"] == expected:
        everyone[0].set()
    await asyncio.wait_for(everyone[0].wait(), HOLD_LIMIT)
    jobs.record(threading.current_thread().name, "met")


@decorate
async def explode_async(message: str) -> None:
    raise ValueError(message)


@pytest.fixture(autouse=True)
def _reset() -> None:
    meeting["arrived"] = 0
    everyone[:] = [asyncio.Event()]


def fill_the_loop() -> Gate:
    gate = Gate()
    hold_the_loop.schedule(gate)
    assert gate.started.wait(HOLD_LIMIT)
    jobs.remember_async.schedule("waiting its turn")
    return gate


def request_scheduling(schedule: Callable[[], None]) -> None:
    """A request, on a thread of the server's (not the main thread), scheduling jobs."""
    hooks["schedule"] = lambda request: schedule()
    join = in_thread(lambda: Client().get("/hook/schedule/"))
    join()


@override_settings(**FULL)
def test_a_requests_async_jobs_with_no_room_are_awaited_together_in_its_thread() -> None:
    gate = fill_the_loop()

    def schedule() -> None:
        for _ in range(3):
            meet.schedule(3)

    request_scheduling(schedule)
    gate.release.set()
    wait_idle(HOLD_LIMIT)

    met = [thread for thread, value in jobs.calls if value == "met"]
    assert len(met) == 3
    assert "raincheck-loop" not in met  # the caller ran them
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.failed, stats.ran_in_caller) == (5, 5, 0, 3)


@override_settings(**FULL)
def test_each_job_awaited_together_is_reported_on_its_own(
    caplog: pytest.LogCaptureFixture,
) -> None:
    gate = fill_the_loop()

    def schedule() -> None:
        explode_async.schedule("boom")
        jobs.remember_async.schedule("after the failure")

    with caplog.at_level(logging.ERROR, logger="raincheck"):
        request_scheduling(schedule)
    gate.release.set()
    wait_idle(HOLD_LIMIT)

    assert "after the failure" in jobs.values()
    failures = [r for r in caplog.records if "failed" in r.getMessage()]
    assert [r.getMessage() for r in failures] == [
        "raincheck job tests.test_together.explode_async failed"
    ]
    stats = raincheck.stats()
    assert (stats.succeeded, stats.failed, stats.ran_in_caller) == (3, 1, 2)
