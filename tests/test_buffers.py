"""Per-request buffers: a request's jobs run after its response, and only its own."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.signals import request_finished, request_started
from django.http import HttpRequest
from django.test import AsyncClient, Client, RequestFactory, override_settings

from raincheck.testing import wait_idle
from tests.app import jobs, views
from tests.app.helpers import async_client_settings, async_get, in_thread
from tests.app.views import hooks


def main_thread_name() -> str:
    return threading.current_thread().name


def on_pool(thread_name: str) -> bool:
    return thread_name.startswith("raincheck-")


def test_job_scheduled_in_a_request_waits_for_the_response() -> None:
    """A job scheduled by a view has not run when the view returns, and runs after."""
    seen_in_view: list[str] = []

    def view(request: HttpRequest) -> None:
        jobs.remember.schedule("after")
        wait_idle()  # would let the job finish if it had been handed off already
        seen_in_view.extend(jobs.values())

    hooks["view"] = view
    assert Client().get("/hook/view/").status_code == 200
    assert seen_in_view == []
    wait_idle()
    [(thread, value)] = jobs.calls
    assert value == "after"
    assert on_pool(thread)


def test_job_runs_only_after_request_finished() -> None:
    """Between the view's return and ``request_finished`` the job is still buffered."""
    request_started.send(sender=None)
    jobs.remember.schedule("buffered")
    wait_idle()
    assert jobs.calls == []
    request_finished.send(sender=None)
    wait_idle()
    assert jobs.values() == ["buffered"]


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_jobs_of_one_request_are_handed_off_in_order() -> None:
    """A request's jobs reach the pool in the order the view scheduled them."""
    expected = [str(i) for i in range(50)]
    query = "&".join(f"v={v}" for v in expected)
    Client().get(f"/schedule/?{query}")
    wait_idle()
    assert jobs.values() == expected


def test_outside_a_request_the_job_is_handed_off_at_once() -> None:
    """Plain code (a command, a script) hands its job to the pool at ``schedule()``."""
    jobs.remember.schedule("now")
    wait_idle()
    [(thread, value)] = jobs.calls
    assert value == "now"
    assert on_pool(thread)


def test_view_called_without_request_signals_hands_off_at_once() -> None:
    """A view called directly (RequestFactory, no request_started) hands off at once."""
    seen_in_view: list[str] = []

    def view(request: HttpRequest) -> None:
        jobs.remember.schedule("factory")
        wait_idle()
        seen_in_view.extend(jobs.values())

    hooks["view"] = view
    views.hook_view(RequestFactory().get("/"), "view")
    assert seen_in_view == ["factory"]


def test_job_scheduled_by_a_job_runs() -> None:
    """A job may schedule another job; it is handed off at once and runs on the pool."""
    jobs.remember_later.schedule("inner")
    wait_idle()
    [(thread, value)] = jobs.calls
    assert value == "inner"
    assert on_pool(thread)


def test_job_scheduled_by_a_request_job_runs() -> None:
    """A request's job that schedules another job does not lose it."""
    views.hooks["view"] = lambda request: jobs.remember_later.schedule("inner")
    Client().get("/hook/view/")
    wait_idle()
    assert jobs.values() == ["inner"]


def test_jobs_scheduled_before_a_view_raises_still_run() -> None:
    """A view that fails after scheduling still gets its jobs run after the 500."""
    response = Client(raise_request_exception=False).get("/fails/")
    assert response.status_code == 500
    wait_idle()
    assert jobs.values() == ["before-error"]


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_run_async_false_runs_jobs_in_the_request_thread_after_the_response(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With RUN_ASYNC False the request's thread runs its jobs after the view, in order."""
    seen_in_view: list[str] = []

    def view(request: HttpRequest) -> None:
        jobs.remember.schedule("first")
        jobs.explode.schedule("inline failure")
        jobs.remember.schedule("last")
        seen_in_view.extend(jobs.values())

    hooks["view"] = view
    with caplog.at_level(logging.ERROR, logger="raincheck"):
        response = Client().get("/hook/view/")
    assert response.status_code == 200
    assert seen_in_view == []
    me = main_thread_name()
    assert jobs.calls == [(me, "first"), (me, "last")]
    [failure] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert "tests.app.jobs.explode" in failure.getMessage()


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_run_async_false_outside_a_request_runs_at_once() -> None:
    """With RUN_ASYNC False a job scheduled outside a request runs in the caller."""
    jobs.remember.schedule("inline")
    assert jobs.calls == [(main_thread_name(), "inline")]


@override_settings(RAINCHECK_IMMEDIATE=True)
def test_immediate_runs_in_the_view() -> None:
    """With IMMEDIATE True a view's job runs inside ``schedule()``, in the view's thread."""
    seen_in_view: list[tuple[str, str]] = []

    def view(request: HttpRequest) -> None:
        jobs.remember.schedule("immediate")
        seen_in_view.extend(jobs.calls)

    hooks["view"] = view
    Client().get("/hook/view/")
    assert seen_in_view == [(main_thread_name(), "immediate")]


@override_settings(RAINCHECK_IMMEDIATE=True)
def test_immediate_propagates_exceptions() -> None:
    """With IMMEDIATE True a failing job raises out of ``schedule()``, even in a view."""
    with pytest.raises(ValueError, match="right away"):
        jobs.explode.schedule("right away")
    with pytest.raises(ValueError, match="from a view"):
        Client().get("/explode/")


def test_async_view_jobs_run_after_the_response() -> None:
    """An async view's jobs (async or sync) run on the pool after its response."""
    seen_in_view: list[str] = []

    async def view(request: HttpRequest) -> None:
        jobs.remember_async.schedule("async job")
        jobs.remember.schedule("sync job")
        await sync_to_async(wait_idle)()
        seen_in_view.extend(jobs.values())

    hooks["view"] = view
    response = async_get("/hook-async/view/")
    assert response.status_code == 200
    assert seen_in_view == []
    wait_idle()
    assert sorted(jobs.values()) == ["async job", "sync job"]
    assert all(on_pool(thread) for thread, _ in jobs.calls)


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_async_view_jobs_keep_their_order() -> None:
    """An async view's jobs reach the pool in the order it scheduled them."""
    async_get("/schedule-async/?v=1&v=2&v=3")
    wait_idle()
    assert jobs.values() == ["1", "2", "3"]


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_async_view_with_run_async_false_runs_jobs_after_the_response() -> None:
    """With RUN_ASYNC False an async view's jobs run after it, before the client returns."""
    seen_in_view: list[str] = []

    async def view(request: HttpRequest) -> None:
        jobs.remember.schedule("a")
        jobs.remember.schedule("b")
        seen_in_view.extend(jobs.values())

    hooks["view"] = view
    async_get("/hook-async/view/")
    assert seen_in_view == []
    assert jobs.values() == ["a", "b"]


def test_one_requests_end_never_hands_off_another_requests_jobs() -> None:
    """Request B finishing (and its job running) leaves request A's job buffered."""
    a_scheduled = threading.Event()
    b_done = threading.Event()
    seen_when_a_returned: list[str] = []

    def slow(request: HttpRequest) -> None:
        jobs.remember.schedule("A")
        a_scheduled.set()
        assert b_done.wait(10)
        seen_when_a_returned.extend(jobs.values())

    hooks["slow"] = slow
    join_a = in_thread(lambda: Client().get("/hook/slow/"))
    assert a_scheduled.wait(10)

    Client().get("/schedule/?v=B")
    wait_idle()
    assert jobs.values() == ["B"]
    b_done.set()
    join_a()

    assert seen_when_a_returned == ["B"]
    wait_idle()
    assert sorted(jobs.values()) == ["A", "B"]


def test_concurrent_async_requests_keep_their_own_jobs() -> None:
    """Two async requests on one event loop: B's end never hands off A's job."""
    seen_when_a_returned: list[str] = []
    seen_after_b: list[str] = []

    async def scenario() -> None:
        a_scheduled = asyncio.Event()
        b_done = asyncio.Event()

        async def slow(request: HttpRequest) -> None:
            jobs.remember_async.schedule("A")
            a_scheduled.set()
            await b_done.wait()
            seen_when_a_returned.extend(jobs.values())

        async def request_b() -> None:
            await a_scheduled.wait()
            await AsyncClient().get("/schedule-async/?v=B")
            await sync_to_async(wait_idle)()
            seen_after_b.extend(jobs.values())
            b_done.set()

        hooks["slow"] = slow
        await asyncio.wait_for(
            asyncio.gather(AsyncClient().get("/hook-async/slow/"), request_b()), timeout=10
        )

    with async_client_settings():
        async_to_sync(scenario)()
    assert seen_after_b == ["B"]
    assert seen_when_a_returned == ["B"]
    wait_idle()
    assert sorted(jobs.values()) == ["A", "B"]


def test_request_without_request_finished_hands_off_at_the_next_request(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Jobs of a request whose server never sent request_finished run at the next one."""
    request_started.send(sender=None)
    jobs.remember.schedule("orphan")
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        request_started.send(sender=None)
    wait_idle()
    assert jobs.values() == ["orphan"]
    assert "never sent request_finished" in caplog.text
    request_finished.send(sender=None)
    wait_idle()
    assert jobs.values() == ["orphan"]


def test_request_finished_without_request_started_is_harmless() -> None:
    """A stray request_finished (no open buffer) neither raises nor runs anything."""
    request_finished.send(sender=None)
    wait_idle()
    assert jobs.calls == []


def test_a_request_with_jobs_leaves_the_garbage_collector_nothing_more_to_find() -> None:
    """A request's jobs and its buffer are freed as soon as they are done with, not
    left as a reference cycle (each job's context holds the buffer) for the collector:
    on a busy server its full collections are the slowest responses."""
    client = Client()
    client.get("/schedule/?v=warm-up")
    wait_idle()
    gc.collect()
    gc.disable()
    try:
        for _ in range(10):
            client.get("/schedule/?w=a&w=b&w=c&w=d&w=e")  # the same, without jobs
        without_jobs = gc.collect()
        for _ in range(10):
            client.get("/schedule/?v=a&v=b&v=c&v=d&v=e")
        wait_idle()
        with_jobs = gc.collect()
    finally:
        gc.enable()
    assert len(jobs.values()) == 51
    assert with_jobs <= without_jobs
