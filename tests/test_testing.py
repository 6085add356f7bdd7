"""``raincheck.testing``: capture scheduled jobs, wait for the pool, pytest fixtures."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

import pytest
from django.http import HttpRequest
from django.test import Client

from raincheck import process
from raincheck.testing import CapturedJobs, capture, wait_idle
from tests.app import jobs
from tests.app.jobs import HOLD_LIMIT, Gate
from tests.app.views import hooks


def test_capture_records_jobs_instead_of_running_them() -> None:
    """Inside ``capture()`` scheduled jobs are recorded, in order, and never run."""
    with capture() as captured:
        jobs.remember.schedule("a")
        jobs.explode.schedule("b")
        jobs.remember.schedule(value="c")
    wait_idle()
    assert jobs.calls == []
    assert process.current().pool is None
    assert captured == [
        (jobs.remember, ("a",), {}),
        (jobs.explode, ("b",), {}),
        (jobs.remember, (), {"value": "c"}),
    ]
    assert captured.calls() == [
        (jobs.remember.func, ("a",), {}),
        (jobs.explode.func, ("b",), {}),
        (jobs.remember.func, (), {"value": "c"}),
    ]


def test_capture_records_jobs_of_a_request() -> None:
    """Jobs a view schedules are captured too, rather than run after the response."""
    hooks["view"] = lambda request: jobs.remember.schedule("from view")
    with capture() as captured:
        Client().get("/hook/view/")
    wait_idle()
    assert captured.calls() == [(jobs.remember.func, ("from view",), {})]
    assert jobs.calls == []


def test_run_runs_captured_jobs_in_this_thread(caplog: pytest.LogCaptureFixture) -> None:
    """``.run()`` runs every captured job here, in order; failures are logged, not raised."""
    with capture() as captured:
        jobs.remember.schedule("first")
        jobs.explode.schedule("middle")
        jobs.remember.schedule("last")
    with caplog.at_level(logging.ERROR, logger="raincheck"):
        captured.run()
    me = threading.current_thread().name
    assert jobs.calls == [(me, "first"), (me, "last")]
    assert "tests.app.jobs.explode" in caplog.text


def test_nested_captures_record_into_the_innermost() -> None:
    """An inner ``capture()`` takes the jobs scheduled inside it; the outer one the rest."""
    with capture() as outer:
        jobs.remember.schedule("outer 1")
        with capture() as inner:
            jobs.remember.schedule("inner")
        jobs.remember.schedule("outer 2")
    assert [args for _, args, _ in outer] == [("outer 1",), ("outer 2",)]
    assert [args for _, args, _ in inner] == [("inner",)]


def test_capture_restores_normal_scheduling_after_an_exception() -> None:
    """An exception inside ``capture()`` propagates, and scheduling runs jobs again after."""
    with pytest.raises(RuntimeError, match="inside"), capture():
        raise RuntimeError("inside")
    jobs.remember.schedule("after")
    wait_idle()
    assert jobs.values() == ["after"]


def test_inner_capture_exception_restores_the_outer_capture() -> None:
    """After an inner ``capture()`` failed, the outer one records again."""
    with capture() as outer:
        with pytest.raises(RuntimeError), capture():
            raise RuntimeError("inner")
        jobs.remember.schedule("outer")
    assert outer.calls() == [(jobs.remember.func, ("outer",), {})]


def test_capture_after_the_fast_path_is_warm() -> None:
    """``capture()`` works even after plain scheduling already ran (no cached routing)."""
    jobs.remember.schedule("warm")
    wait_idle()
    with capture() as captured:
        jobs.remember.schedule("captured")
    wait_idle()
    assert jobs.values() == ["warm"]
    assert captured.calls() == [(jobs.remember.func, ("captured",), {})]


def test_assert_scheduled_passes_and_fails_with_a_listing() -> None:
    """``assert_scheduled`` accepts a scheduled call and explains a missing one."""
    with capture() as captured:
        jobs.remember.schedule("a")
    captured.assert_scheduled(jobs.remember, "a")
    captured.assert_scheduled(jobs.remember.func, "a")
    with pytest.raises(AssertionError, match=r"tests\.app\.jobs\.remember\('a'\)"):
        captured.assert_scheduled(jobs.remember, "b")


def test_assert_not_scheduled() -> None:
    """``assert_not_scheduled`` fails only if the function was scheduled."""
    with capture() as captured:
        jobs.remember.schedule("a")
    captured.assert_not_scheduled(jobs.explode)
    with pytest.raises(AssertionError, match="was scheduled"):
        captured.assert_not_scheduled(jobs.remember)


def test_wait_idle_raises_timeout_error_while_a_job_runs() -> None:
    """``wait_idle(timeout)`` raises TimeoutError while a job is still running."""
    gate = Gate()
    jobs.held.schedule(gate, "slow")
    assert gate.started.wait(HOLD_LIMIT)
    with pytest.raises(TimeoutError):
        wait_idle(0.2)
    gate.release.set()
    wait_idle()
    assert jobs.values() == ["slow"]


def test_wait_idle_without_a_pool_returns_at_once() -> None:
    """``wait_idle()`` before any job returns without creating a pool."""
    wait_idle(0)
    assert process.current().pool is None


def test_raincheck_jobs_fixture_captures(raincheck_jobs: CapturedJobs) -> None:
    """The ``raincheck_jobs`` fixture captures for the whole test."""
    jobs.remember.schedule("fixture")
    raincheck_jobs.assert_scheduled(jobs.remember, "fixture")
    assert jobs.calls == []


def test_raincheck_idle_fixture_waits(raincheck_idle: Callable[..., None]) -> None:
    """The ``raincheck_idle`` fixture waits until handed-off jobs have finished."""
    jobs.remember.schedule("done")
    raincheck_idle()
    assert jobs.values() == ["done"]


def test_capture_in_a_view_keeps_view_order() -> None:
    """Captured jobs of several requests keep the order they were scheduled in."""

    def view(request: HttpRequest) -> None:
        for value in request.GET.getlist("v"):
            jobs.remember.schedule(value)

    hooks["view"] = view
    with capture() as captured:
        Client().get("/hook/view/?v=1&v=2")
        Client().get("/hook/view/?v=3")
    assert [args for _, args, _ in captured] == [("1",), ("2",), ("3",)]
