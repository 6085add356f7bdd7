"""Each job runs in a copy of the context it was scheduled in, and changes nothing outside it."""

from __future__ import annotations

import asyncio
import logging
import threading
from contextvars import ContextVar
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.http import HttpRequest
from django.test import Client, override_settings

from raincheck import raincheck as decorate
from raincheck.logs import JobNameFilter, add_job_name
from raincheck.testing import capture, wait_idle
from tests.app import jobs
from tests.app.helpers import async_get
from tests.app.views import hooks

request_id: ContextVar[str] = ContextVar("request_id", default="none")
seen: list[tuple[str, str]] = []


@decorate
def see(label: str) -> None:
    """Record what ``request_id`` says in the job, then change it (which must not leak)."""
    seen.append((label, request_id.get()))
    request_id.set("changed by a job")


@decorate
async def see_async(label: str) -> None:
    await asyncio.sleep(0)
    seen.append((label, request_id.get()))
    seen.append((f"{label} in sync_to_async", await sync_to_async(request_id.get)()))
    request_id.set("changed by a job")


@pytest.fixture(autouse=True)
def _clear_seen() -> None:
    seen.clear()


def _schedule_in_request(label: str, value: str) -> None:
    def view(request: HttpRequest) -> None:
        request_id.set(value)
        see.schedule(label)
        see_async.schedule(f"{label} async")
        request_id.set("changed after schedule")

    hooks[label] = view


def test_a_job_sees_the_context_it_was_scheduled_in() -> None:
    """A variable set in the view reads, in its jobs, as it was at .schedule()."""
    _schedule_in_request("a", "request a")
    Client().get("/hook/a/")
    wait_idle()
    assert sorted(seen) == [
        ("a", "request a"),
        ("a async", "request a"),
        ("a async in sync_to_async", "request a"),
    ]


def test_two_requests_jobs_each_see_their_own_request() -> None:
    """Interleaved requests on threads: every job sees its own request's value."""
    for label in ("r1", "r2", "r3"):
        _schedule_in_request(label, f"value of {label}")
    threads = [
        threading.Thread(target=Client().get, args=(f"/hook/{label}/",))
        for label in ("r1", "r2", "r3")
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(jobs.HOLD_LIMIT)
    wait_idle()
    for label, value in seen:
        assert value == f"value of {label.split()[0]}"
    assert len(seen) == 9


def test_changes_in_a_job_leak_nowhere() -> None:
    """What a job sets stays in its copy: not in the caller, not in the next job."""
    request_id.set("the caller's")
    see.schedule("first")
    see.schedule("second")
    wait_idle()
    assert seen == [("first", "the caller's"), ("second", "the caller's")]
    assert request_id.get() == "the caller's"


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_jobs_run_in_the_caller_get_their_context_too() -> None:
    """RUN_ASYNC=False: the request thread runs each job in the job's own context."""
    _schedule_in_request("caller", "request value")
    Client().get("/hook/caller/")
    assert sorted(seen) == [
        ("caller", "request value"),
        ("caller async", "request value"),
        ("caller async in sync_to_async", "request value"),
    ]


def test_async_view_jobs_see_the_views_context() -> None:
    """An async view's jobs see what the view set (ASGI, through AsyncClient)."""

    async def view(request: HttpRequest) -> None:
        request_id.set("async view")
        see.schedule("from async view")

    hooks["async-view"] = view
    async_get("/hook-async/async-view/")
    wait_idle()
    assert seen == [("from async view", "async view")]


@decorate
def schedule_another(label: str) -> None:
    see.schedule(label)


def test_a_job_scheduled_by_a_job_runs_although_its_request_has_ended() -> None:
    """The job's copy holds its request's closed buffer: a job it schedules is handed off."""
    hooks["nested"] = lambda request: schedule_another.schedule("nested")
    Client().get("/hook/nested/")
    wait_idle()
    wait_idle()
    assert [label for label, _ in seen] == ["nested"]


def test_captured_jobs_run_in_their_context() -> None:
    """capture().run() runs each job in the context it was scheduled in."""
    request_id.set("at capture")
    with capture() as captured:
        see.schedule("captured")
    request_id.set("later")
    captured.run()
    assert seen == [("captured", "at capture")]


@decorate
def log_something() -> None:
    logging.getLogger("tests.context").warning("inside")


@decorate
async def log_something_async() -> None:
    await sync_to_async(logging.getLogger("tests.context").warning)("inside async")


def test_log_records_carry_the_jobs_name(caplog: pytest.LogCaptureFixture) -> None:
    """JobNameFilter adds ``raincheck_job``, in sync jobs, async jobs and their threads."""
    name_filter = JobNameFilter()
    caplog.handler.addFilter(name_filter)
    try:
        logging.getLogger("tests.context").warning("outside")
        log_something.schedule()
        log_something_async.schedule()
        wait_idle()
    finally:
        caplog.handler.removeFilter(name_filter)
    names = {record.getMessage(): record.__dict__["raincheck_job"] for record in caplog.records}
    assert names == {
        "outside": "-",
        "inside": "tests.test_context.log_something",
        "inside async": "tests.test_context.log_something_async",
    }


def test_structlog_processor_adds_the_jobs_name() -> None:
    """add_job_name is a structlog processor: it adds ``raincheck_job`` to the event dict."""
    events: list[dict[str, Any]] = []

    @decorate
    def job() -> None:
        events.append(dict(add_job_name(None, "info", {"event": "hi"})))

    job.schedule()
    wait_idle()
    assert events == [{"event": "hi", "raincheck_job": job.name}]
    assert add_job_name(None, "info", {})["raincheck_job"] == "-"
