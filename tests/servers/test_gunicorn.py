"""gunicorn specifics: a preloading, forking master, worker recycling, reloads, raising jobs."""

from __future__ import annotations

import signal

import pytest

from tests.servers.checks import (
    FOUR_WORKERS,
    assert_all_ran_once,
    assert_replaced,
    check_forked_workers,
    schedule_naps,
)
from tests.servers.conftest import ServerFactory
from tests.servers.harness import (
    count,
    gunicorn_argv,
    only,
    worker_options,
)
from tests.servers.project.wsgi_preload import IMPORT_TAGS

pytestmark = pytest.mark.server

PRELOAD_APP = "tests.servers.project.wsgi_preload:application"


def test_preload_runs_the_import_time_job_once_and_each_worker_runs_its_own(
    start: ServerFactory,
) -> None:
    """With --preload, jobs scheduled at import run once in the master; workers run their own."""
    server = start(
        "gunicorn-preload",
        gunicorn_argv("-k", "sync", "--workers", "2", "--preload", app=PRELOAD_APP),
        env={"RAINCHECK_TEST_MAX_WORKERS": "1"},
    )
    check_forked_workers(server, IMPORT_TAGS, lambda server: server.send_signal(signal.SIGTERM))


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_a_raising_job_is_logged_and_the_next_job_still_runs(
    start: ServerFactory, worker: str
) -> None:
    """A raising job leaves the response a 200, is logged with its traceback, spares the rest."""
    server = start("gunicorn", gunicorn_argv(*worker_options(worker), "--workers", "1"))
    assert f"Using worker: {worker}" in server.log(), server.report(f"not a {worker} worker")
    reply = server.get("/fail/?tag=boom")
    assert reply.status == 200, server.report(f"the request answered {reply.status}")
    pid = reply.json()["pid"]

    seen = server.wait_for_events(lambda seen: count(seen, "boom-after", "end") == 1, "next job")
    assert only(seen, "boom", "start")["pid"] == pid
    assert only(seen, "boom-after", "start")["pid"] == pid
    log = server.wait_for_log(
        "ERROR raincheck",
        "tests.servers.project.jobs.explode",
        "Traceback (most recent call last)",
        "RuntimeError: job boom exploded on purpose",
    )
    failures = [line for line in log.splitlines() if line.startswith("ERROR raincheck")]
    assert len(failures) == 1, server.report("the failure was not logged exactly once")
    assert "tests.servers.project.jobs.explode" in failures[0]

    # The worker (and its pool) survived: the next request's job runs there too.
    assert server.get_json("/quick/?tag=later")["pid"] == pid
    server.wait_for_events(lambda seen: count(seen, "later", "end") == 1, "a later job")


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_max_requests_recycling_drains_the_old_worker(start: ServerFactory, worker: str) -> None:
    """A worker recycled by --max-requests right after queueing 30 jobs runs them all first."""
    server = start(
        f"gunicorn-{worker}",
        # Request 1 is the readiness check, request 2 queues the jobs.
        gunicorn_argv(*worker_options(worker), "--workers", "1", "--max-requests", "2"),
        env=FOUR_WORKERS,
    )
    pid = schedule_naps(server)
    assert_replaced(server, pid)
    assert "Autorestarting worker" in server.log(), server.report("not recycled by max_requests")
    assert_all_ran_once(server, pid)


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_hup_reload_drains_the_old_worker(start: ServerFactory, worker: str) -> None:
    """After SIGHUP right after queueing 30 jobs, the replaced worker runs them all first."""
    server = start(
        f"gunicorn-{worker}",
        gunicorn_argv(*worker_options(worker), "--workers", "1"),
        env=FOUR_WORKERS,
    )
    pid = schedule_naps(server)
    server.send_signal(signal.SIGHUP)
    assert_replaced(server, pid)
    assert "Hang up: Master" in server.log(), server.report("the master did not reload")
    assert_all_ran_once(server, pid)
