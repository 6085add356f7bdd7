"""Running a job: failures, signals, event loops and database connections."""

from __future__ import annotations

import gc
import logging
import sys
import threading
from collections.abc import Callable
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.db import connections
from django.db.backends.base.base import BaseDatabaseWrapper
from django.http import HttpRequest
from django.test import Client, override_settings

import raincheck
from raincheck import raincheck as decorate
from raincheck import signals
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.helpers import async_get
from tests.app.jobs import HOLD_LIMIT, Gate
from tests.app.views import hooks

Received = list[dict[str, Any]]

opened: list[BaseDatabaseWrapper] = []


@decorate
def open_connection(gate: Gate | None = None) -> None:
    """Open this thread's default database connection and keep a handle on it."""
    connection = connections["default"]
    connection.ensure_connection()
    assert connection.connection is not None
    opened.append(connection)
    if gate is not None:
        gate.started.set()
        assert gate.release.wait(HOLD_LIMIT)


@decorate
def report_connection() -> None:
    """Record whether this thread still holds an open default connection."""
    state = "open" if connections["default"].connection is not None else "closed"
    jobs.record(threading.current_thread().name, state)


@decorate
async def open_connection_async() -> None:
    """Use the database from an async job, the way async views do."""
    await sync_to_async(open_connection.func)()


@decorate
def exit_job() -> None:
    raise SystemExit(3)


@pytest.fixture(autouse=True)
def _forget_connections() -> None:
    opened.clear()


def test_failing_job_is_logged_with_its_name_and_traceback(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job that raises is logged at ERROR on logger ``raincheck`` with name and traceback."""
    with caplog.at_level(logging.ERROR, logger="raincheck"):
        jobs.explode.schedule("boom")
        wait_idle()
    [record] = caplog.records
    assert record.name == "raincheck"
    assert record.levelno == logging.ERROR
    assert "tests.app.jobs.explode" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[0] is ValueError
    assert "ValueError: boom" in caplog.text


def test_failing_job_sends_job_failed_once(received: Callable[..., Received]) -> None:
    """``job_failed`` is sent once, with the original function, exception and arguments."""
    failed = received(signals.job_failed)
    finished = received(signals.job_finished)
    jobs.explode.schedule("boom", **{})
    wait_idle()
    [sent] = failed
    assert sent["sender"] is jobs.explode.func
    assert isinstance(sent["exception"], ValueError)
    assert str(sent["exception"]) == "boom"
    assert sent["args"] == ("boom",)
    assert sent["kwargs"] == {}
    assert finished == []


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_worker_survives_a_failing_job() -> None:
    """The worker that ran a failing job stays alive and runs the next job."""
    failed_on: list[str] = []

    def on_failed(**kwargs: Any) -> None:
        failed_on.append(threading.current_thread().name)

    signals.job_failed.connect(on_failed)
    try:
        jobs.explode.schedule("boom")
        jobs.remember.schedule("after")
        wait_idle()
    finally:
        signals.job_failed.disconnect(on_failed)
    [(thread, value)] = jobs.calls
    assert value == "after"
    assert failed_on == [thread]
    assert thread.startswith("raincheck-")
    stats = raincheck.stats()
    assert (stats.failed, stats.succeeded, stats.workers) == (1, 1, 1)


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_job_raising_system_exit_does_not_kill_its_worker() -> None:
    """A job that raises SystemExit is counted as failed; its worker runs the next job."""
    exit_job.schedule()
    jobs.remember.schedule("after")
    wait_idle()
    assert jobs.values() == ["after"]
    stats = raincheck.stats()
    assert (stats.failed, stats.succeeded, stats.workers) == (1, 1, 1)


def test_job_raising_system_exit_is_logged_and_signalled(
    caplog: pytest.LogCaptureFixture, received: Callable[..., Received]
) -> None:
    """A job that raises SystemExit is reported like any other failing job."""
    failed = received(signals.job_failed)
    with caplog.at_level(logging.ERROR, logger="raincheck"):
        exit_job.schedule()
        wait_idle()
    assert "tests.test_jobs.exit_job" in caplog.text
    assert len(failed) == 1


def test_view_scheduling_a_failing_job_still_answers_200(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A job's exception never reaches the request that scheduled it."""
    with caplog.at_level(logging.ERROR, logger="raincheck"):
        response = Client().get("/explode/")
        wait_idle()
    assert response.status_code == 200
    assert "tests.app.jobs.explode" in caplog.text
    assert raincheck.stats().failed == 1


def test_started_and_finished_fire_once_per_job(received: Callable[..., Received]) -> None:
    """``job_started`` then ``job_finished`` (with a float duration) fire once per job."""
    started = received(signals.job_started)
    finished = received(signals.job_finished)
    jobs.remember.schedule("one")
    jobs.remember.schedule(value="two")
    wait_idle()
    assert sorted((s["args"], tuple(s["kwargs"].items())) for s in started) == [
        ((), (("value", "two"),)),
        (("one",), ()),
    ]
    assert len(finished) == 2
    for sent in [*started, *finished]:
        assert sent["sender"] is jobs.remember.func
    for sent in finished:
        assert isinstance(sent["duration"], float)
        assert sent["duration"] >= 0


def test_started_fires_before_finished_on_the_same_thread() -> None:
    """A job's ``job_started`` and ``job_finished`` come in that order, from its thread."""
    events: list[tuple[str, str]] = []

    def on_started(**kwargs: Any) -> None:
        events.append(("started", threading.current_thread().name))

    def on_finished(**kwargs: Any) -> None:
        events.append(("finished", threading.current_thread().name))

    signals.job_started.connect(on_started)
    signals.job_finished.connect(on_finished)
    try:
        jobs.remember.schedule("ordered")
        wait_idle()
    finally:
        signals.job_started.disconnect(on_started)
        signals.job_finished.disconnect(on_finished)
    thread = jobs.calls[0][0]
    assert events == [("started", thread), ("finished", thread)]


def test_failing_job_sends_started_but_not_finished(received: Callable[..., Received]) -> None:
    """A failing job sends ``job_started`` and ``job_failed``, never ``job_finished``."""
    started = received(signals.job_started)
    finished = received(signals.job_finished)
    failed = received(signals.job_failed)
    jobs.explode.schedule("boom")
    wait_idle()
    assert (len(started), len(finished), len(failed)) == (1, 0, 1)


@pytest.mark.parametrize("signal", [signals.job_started, signals.job_finished])
def test_failing_signal_receiver_is_logged_and_spares_the_job(
    signal: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """A receiver of a job signal that raises is logged; the job still counts as succeeded."""

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signal.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="raincheck"):
            jobs.remember.schedule("despite receiver")
            wait_idle()
    finally:
        signal.disconnect(broken)
    assert jobs.values() == ["despite receiver"]
    assert "receiver bug" in caplog.text
    stats = raincheck.stats()
    assert (stats.succeeded, stats.failed) == (1, 0)


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_failing_receiver_never_reaches_the_request(caplog: pytest.LogCaptureFixture) -> None:
    """With jobs run in the request thread, a failing ``job_failed`` receiver stays out of it."""

    def broken(**kwargs: Any) -> None:
        raise RuntimeError("receiver bug")

    signals.job_failed.connect(broken)
    try:
        with caplog.at_level(logging.ERROR, logger="raincheck"):
            response = Client().get("/explode/")
    finally:
        signals.job_failed.disconnect(broken)
    assert response.status_code == 200
    assert "receiver bug" in caplog.text


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_system_exit_in_a_job_never_reaches_the_request() -> None:
    """A job calling ``sys.exit()`` in the request thread is a failed job, not a dead server."""
    hooks["view"] = lambda request: exit_job.schedule()
    assert Client().get("/hook/view/").status_code == 200
    assert raincheck.stats().failed == 1


@override_settings(RAINCHECK_SLOW_JOB_WARNING=1e-9)
def test_slow_job_is_logged(caplog: pytest.LogCaptureFixture) -> None:
    """A job that takes longer than SLOW_JOB_WARNING seconds is logged at WARNING."""
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        jobs.remember.schedule("slow")
        wait_idle()
    [record] = caplog.records
    assert record.levelno == logging.WARNING
    assert "tests.app.jobs.remember" in record.getMessage()


def test_no_slow_job_warning_by_default(caplog: pytest.LogCaptureFixture) -> None:
    """Without SLOW_JOB_WARNING, no job is ever reported as slow."""
    with caplog.at_level(logging.DEBUG, logger="raincheck"):
        jobs.remember.schedule("fine")
        wait_idle()
    assert [r for r in caplog.records if r.levelno >= logging.WARNING] == []


# -- event loops of async jobs ------------------------------------------------


def collect_unraisable(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    unraisable: list[Any] = []
    monkeypatch.setattr(sys, "unraisablehook", unraisable.append)
    return unraisable


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_async_job_run_in_a_request_thread_leaves_no_event_loop_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An async job run outside the pool (RUN_ASYNC False) closes the loop it ran on."""
    unraisable = collect_unraisable(monkeypatch)
    hooks["view"] = lambda request: jobs.remember_async.schedule("in request thread")
    thread = threading.Thread(target=lambda: Client().get("/hook/view/"))
    thread.start()
    thread.join(HOLD_LIMIT)
    del thread
    gc.collect()
    assert jobs.values() == ["in request thread"]
    assert [str(u.exc_value) for u in unraisable] == []


@override_settings(RAINCHECK_RUN_ASYNC=False)
def test_async_job_after_an_async_view_leaves_no_event_loop_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An async view's async job run inline (RUN_ASYNC False) leaves no loop unclosed."""
    unraisable = collect_unraisable(monkeypatch)

    async def view(request: HttpRequest) -> None:
        jobs.remember_async.schedule("after async view")

    hooks["view"] = view
    async_get("/hook-async/view/")
    gc.collect()
    assert jobs.values() == ["after async view"]
    assert [str(u.exc_value) for u in unraisable] == []


def test_async_job_on_the_pool_leaves_no_event_loop_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The workers' event loops are closed when the pool stops."""
    unraisable = collect_unraisable(monkeypatch)
    jobs.remember_async.schedule("on the pool")
    wait_idle()
    raincheck.shutdown(timeout=HOLD_LIMIT)
    gc.collect()
    assert jobs.values() == ["on the pool"]
    assert [str(u.exc_value) for u in unraisable] == []


# -- database connections -----------------------------------------------------


@pytest.mark.django_db(transaction=True)
@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_worker_closes_its_connection_after_each_job() -> None:
    """With CONN_MAX_AGE 0 a worker's database connection is closed as soon as the job ends."""
    assert connections["default"].settings_dict["CONN_MAX_AGE"] == 0
    open_connection.schedule()
    wait_idle()
    [connection] = opened
    assert connection.connection is None
    report_connection.schedule()
    wait_idle()
    [(thread, state)] = jobs.calls
    assert thread.startswith("raincheck-")
    assert state == "closed"


@pytest.mark.django_db(transaction=True)
@override_settings(RAINCHECK_MAX_WORKERS=2)
def test_workers_close_persistent_connections_on_shutdown(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Connections kept open by CONN_MAX_AGE are all closed when the pool stops."""
    monkeypatch.setitem(connections["default"].settings_dict, "CONN_MAX_AGE", None)
    first, second = Gate(), Gate()
    open_connection.schedule(first)
    open_connection.schedule(second)
    assert first.started.wait(HOLD_LIMIT)
    assert second.started.wait(HOLD_LIMIT)
    first.release.set()
    second.release.set()
    wait_idle()
    assert len(opened) == 2
    assert opened[0] is not opened[1]
    assert all(c.connection is not None for c in opened)
    raincheck.shutdown(timeout=HOLD_LIMIT)
    assert [c.connection for c in opened] == [None, None]


@pytest.mark.django_db(transaction=True)
def test_async_job_closes_the_connections_it_used() -> None:
    """Database connections an async job opened through sync_to_async are closed after it."""
    open_connection_async.schedule()
    wait_idle()
    [connection] = opened
    assert connection.connection is None
