"""gunicorn specifics: a preloading, forking master, and jobs that raise."""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.servers.conftest import ServerFactory
from tests.servers.harness import count, gunicorn_argv, only, worker_options
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
    master = server.process.pid

    # A sync worker serves one request at a time: while request w1 holds its
    # worker, request w2 can only be served by the other one.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-w1") as client:
        held = client.submit(server.get_json, "/hold/?tag=w1&wait_for=released")
        server.wait_for_events(lambda seen: count(seen, "w1", "view-entered") == 1, "w1's view")
        releasing = server.get_json("/release/?name=released&tag=w2")
        holding = held.result(timeout=30)
    assert holding["saw_other"], server.report("request w1 was never released")
    workers = {"w1": holding["pid"], "w2": releasing["pid"]}
    assert len({master, *workers.values()}) == 3, server.report(f"not two workers: {workers}")
    server.wait_for_events(
        lambda seen: all(count(seen, tag, "end") for tag in workers), "the workers' jobs"
    )

    # Stopping the workers runs their exit drains: nothing of the master's may run there.
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit(20) == 0, server.report("gunicorn did not exit cleanly")
    seen = server.events()
    for tag in IMPORT_TAGS:
        assert count(seen, tag, "start") == 1, server.report(f"{tag} did not run exactly once")
        assert count(seen, tag, "end") == 1, server.report(f"{tag} did not finish")
        assert only(seen, tag, "start")["pid"] == master, server.report(f"{tag} not in the master")
    for tag, pid in workers.items():
        assert count(seen, tag, "start") == 1, server.report(f"job {tag} did not run once")
        assert only(seen, tag, "start")["pid"] == pid, server.report(f"job {tag} ran elsewhere")
        assert only(seen, tag, "start")["thread"].startswith("raincheck-")


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
