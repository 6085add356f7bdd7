"""Where a job goes: the process's one pool, replaced after fork, drained at exit."""

from __future__ import annotations

import json
import logging
import os
import threading
import traceback
from collections.abc import Callable
from dataclasses import asdict
from typing import Any

import pytest
from django.core.signals import request_finished
from django.http import HttpRequest
from django.test import Client, override_settings

import raincheck
from raincheck import drain, process
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.helpers import current_pool, hold_the_worker, in_thread, spy_on_idle
from tests.app.jobs import HOLD_LIMIT
from tests.app.views import hooks

needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
# Python 3.12+ warns that forking a multi-threaded process may deadlock the child;
# forking with the pool's threads alive is exactly what these tests are about.
fork_warning_ok = pytest.mark.filterwarnings("ignore:This process:DeprecationWarning")


def in_child(child: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Fork; run ``child`` in the child and return what it returned, as JSON, to the parent."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child, which never returns
        try:
            os.close(read_fd)
            try:
                report = child()
            except BaseException:
                report = {"error": traceback.format_exc()}
            os.write(write_fd, json.dumps(report).encode())
        finally:
            os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd) as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    returned: dict[str, Any] = json.loads(data)
    assert "error" not in returned, returned["error"]
    return returned


@needs_fork
@fork_warning_ok
@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_forked_child_runs_jobs_on_a_fresh_empty_pool() -> None:
    """A child forked after the pool exists gets its own pool, without the parent's jobs."""
    gate = hold_the_worker()
    jobs.remember.schedule("parent-queued")
    parent_pool = current_pool()

    def child() -> dict[str, Any]:
        jobs.remember.schedule("child")
        wait_idle(HOLD_LIMIT)
        return {
            "calls": jobs.calls,
            "stats": asdict(raincheck.stats()),
            "new_pool": process.current().pool is not parent_pool,
        }

    report = in_child(child)
    assert report["new_pool"]
    [[thread, value]] = report["calls"]
    assert value == "child"
    assert thread.startswith("raincheck-")
    stats = report["stats"]
    assert (stats["scheduled"], stats["succeeded"], stats["queued"], stats["running"]) == (
        1,
        1,
        0,
        0,
    )

    gate.release.set()
    wait_idle()
    assert jobs.values() == ["held", "parent-queued"]
    assert current_pool() is parent_pool
    assert raincheck.stats().succeeded == 2


@needs_fork
@fork_warning_ok
def test_child_forked_during_a_request_does_not_run_its_jobs() -> None:
    """A process forked mid-request starts with an empty buffer; the parent keeps its jobs."""
    reports: list[dict[str, Any]] = []
    jobs.remember.schedule("pool exists")
    wait_idle()

    def child() -> dict[str, Any]:
        request_finished.send(sender=None)
        jobs.remember.schedule("child")
        wait_idle(HOLD_LIMIT)
        return {"values": jobs.values()}

    def view(request: HttpRequest) -> None:
        jobs.remember.schedule("parent request")
        reports.append(in_child(child))

    hooks["view"] = view
    Client().get("/hook/view/")
    wait_idle()
    assert reports == [{"values": ["pool exists", "child"]}]
    assert jobs.values() == ["pool exists", "parent request"]


def test_stats_without_a_pool_are_zero() -> None:
    """Before any job, ``stats()`` reports zeros and creates no pool."""
    stats = raincheck.stats()
    assert asdict(stats) == dict.fromkeys(asdict(stats), 0)
    assert process.current().pool is None


def test_pool_is_created_lazily_and_reused() -> None:
    """No pool exists until the first hand-off; later hand-offs reuse it."""
    assert process.current().pool is None
    jobs.remember.schedule("first")
    pool = current_pool()
    jobs.remember.schedule("second")
    wait_idle()
    assert current_pool() is pool


def test_after_the_exit_drain_jobs_run_in_the_caller(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once the exit drain ran, a late job runs in the caller and no pool is recreated."""
    monkeypatch.setattr(process.current(), "exiting", False)
    jobs.remember.schedule("before exit")
    wait_idle()
    drain.drain_for_exit()
    jobs.remember.schedule("after exit")
    assert jobs.calls[-1] == (threading.current_thread().name, "after exit")
    assert process.current().pool is None
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.ran_in_caller) == (2, 2, 1)


@override_settings(RAINCHECK_SHUTDOWN_TIMEOUT=0.05)
def test_shutdown_defaults_to_the_shutdown_timeout_setting(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """``shutdown()`` without a timeout waits RAINCHECK_SHUTDOWN_TIMEOUT, not forever."""
    gate = hold_the_worker()
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        raincheck.shutdown()
    assert not gate.release.is_set()
    assert "tests.app.jobs.held" in caplog.text


@override_settings(RAINCHECK_SHUTDOWN_TIMEOUT=float("inf"))
def test_infinite_shutdown_timeout_waits_for_every_job() -> None:
    """SHUTDOWN_TIMEOUT ``float("inf")`` passes the checks, so it must mean "no deadline"."""
    gate = hold_the_worker()
    waiting = spy_on_idle(current_pool())
    join = in_thread(raincheck.shutdown)
    assert waiting.wait(HOLD_LIMIT)
    gate.release.set()
    join()
    assert jobs.values() == ["held"]
