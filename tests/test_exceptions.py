"""One rule for every exception a job raises, on the pool and in the caller.

Every exception, ``BaseException`` subclasses included, is a failure of its job:
logged with the job's name, sent as ``job_failed``, counted; the jobs after it
still run. Only ``KeyboardInterrupt`` on the main thread (Ctrl-C) is raised
again after being reported.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
from typing import Any

import pytest
from django.test import Client, override_settings

import raincheck
from raincheck import raincheck as decorate
from raincheck import signals
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.views import hooks

RAISED = {
    "KeyboardInterrupt": KeyboardInterrupt,
    "GeneratorExit": GeneratorExit,
    "CancelledError": asyncio.CancelledError,
    "SystemExit": SystemExit,
}


@decorate
def raise_named(name: str) -> None:
    raise RAISED[name]()


@decorate
async def raise_named_async(name: str) -> None:
    await asyncio.sleep(0)
    raise RAISED[name]()


@pytest.mark.parametrize("name", sorted(RAISED))
@pytest.mark.parametrize("job", [raise_named, raise_named_async], ids=["sync", "async"])
def test_base_exception_on_the_pool_is_a_reported_failure(
    job: Any, name: str, caplog: pytest.LogCaptureFixture, received: Any
) -> None:
    """On the pool, any BaseException is logged with the job's name, signalled and counted."""
    failed = received(signals.job_failed)
    job.schedule(name)
    jobs.remember.schedule("next")
    wait_idle()
    assert f"raincheck job {job.name} failed" in caplog.text
    assert [type(sent["exception"]) for sent in failed] == [RAISED[name]]
    assert jobs.values() == ["next"]
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.failed) == (2, 1, 1)


@override_settings(RAINCHECK_RUN_ASYNC=False)
@pytest.mark.parametrize("name", ["GeneratorExit", "CancelledError", "SystemExit"])
def test_base_exception_in_the_caller_spares_the_request_and_later_jobs(
    name: str, caplog: pytest.LogCaptureFixture, received: Any
) -> None:
    """RUN_ASYNC=False: a BaseException never escapes request_finished; later jobs run."""
    failed = received(signals.job_failed)

    def view(request: Any) -> None:
        raise_named.schedule(name)
        jobs.remember.schedule("after it")

    hooks["view"] = view
    response = Client().get("/hook/view/")
    assert response.status_code == 200
    assert jobs.values() == ["after it"]
    assert len(failed) == 1
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.failed) == (2, 1, 1)


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_keyboard_interrupt_on_the_main_thread_is_reported_then_raised(
    caplog: pytest.LogCaptureFixture, received: Any
) -> None:
    """Ctrl-C reaches a job on the main thread: reported, the rest counted as dropped, raised."""
    assert threading.current_thread() is threading.main_thread()
    failed = received(signals.job_failed)

    def view(request: Any) -> None:
        raise_named.schedule("KeyboardInterrupt")
        jobs.remember.schedule("never")

    hooks["view"] = view
    caplog.set_level(logging.WARNING, logger="raincheck")
    with pytest.raises(KeyboardInterrupt):
        Client().get("/hook/view/")
    assert jobs.values() == []
    assert len(failed) == 1
    assert "1 job(s) not run, interrupted: tests.app.jobs.remember" in caplog.text
    stats = raincheck.stats()
    assert (stats.scheduled, stats.failed, stats.dropped) == (2, 1, 1)


def test_keyboard_interrupt_off_the_main_thread_is_a_plain_failure() -> None:
    """A job run by another thread in the caller (caller_runs) never raises KeyboardInterrupt."""
    errors: list[BaseException] = []

    def hand_off() -> None:
        try:
            with override_settings(RAINCHECK_RUN_ASYNC=False):
                raise_named.schedule("KeyboardInterrupt")
                jobs.remember.schedule("next")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=hand_off)
    thread.start()
    thread.join(jobs.HOLD_LIMIT)
    assert errors == []
    assert jobs.values() == ["next"]


def test_generator_function_is_refused_at_decoration() -> None:
    """A generator function would 'succeed' without its body running: refused, saying why."""

    def numbers() -> Any:
        yield 1

    with pytest.raises(TypeError, match="generator function"):
        decorate(numbers)


async def _record_async(value: str) -> None:
    await asyncio.sleep(0)
    jobs.record("async body", value)


class AsyncCallable:
    async def __call__(self, value: str) -> None:
        await _record_async(value)


@pytest.mark.parametrize(
    "func",
    [functools.partial(_record_async, "partial"), AsyncCallable()],
    ids=["partial", "callable-object"],
)
def test_a_coroutine_returned_by_a_sync_callable_is_awaited(func: Any) -> None:
    """A callable that returns a coroutine has its body run to completion, on the pool."""
    job = decorate(func)
    if isinstance(func, functools.partial):
        job.schedule()
    else:
        job.schedule("callable-object")
    wait_idle()
    assert len(jobs.values()) == 1
    assert raincheck.stats().succeeded == 1


class Numbers:
    def __call__(self, limit: int) -> Any:
        yield from range(limit)


def test_a_generator_returned_at_run_time_fails_the_job(caplog: pytest.LogCaptureFixture) -> None:
    """A callable object that returns a generator: its body never runs, a clear failure."""
    job = decorate(Numbers())
    job.schedule(3)
    wait_idle()
    assert "returned a generator, so its body never ran" in caplog.text
    assert raincheck.stats().failed == 1
