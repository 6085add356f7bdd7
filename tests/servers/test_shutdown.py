"""A graceful stop drains the pool, within RAINCHECK_SHUTDOWN_TIMEOUT (SPEC §4, Shutdown).

gunicorn's master forwards SIGTERM to its workers; a worker finishes its
requests, returns from its loop and calls ``sys.exit``, so the interpreter runs
raincheck's ``atexit`` drain (FACTS.md §3). Its ``graceful_timeout`` (30 s) is
above the drain deadline used here.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.servers.conftest import ServerFactory
from tests.servers.harness import count, gunicorn_argv, worker_options

pytestmark = pytest.mark.server

JOBS = 30
EXIT_DEADLINE = 20.0


@pytest.mark.parametrize("worker", ["sync", "gthread"])
def test_sigterm_runs_every_queued_job_before_gunicorn_exits(
    start: ServerFactory, worker: str
) -> None:
    """SIGTERM right after the response still runs each of the request's 30 jobs exactly once."""
    server = start(
        f"gunicorn-{worker}",
        gunicorn_argv(*worker_options(worker), "--workers", "1"),
        env={"RAINCHECK_TEST_MAX_WORKERS": "4", "RAINCHECK_TEST_SHUTDOWN_TIMEOUT": "10"},
    )
    assert f"Using worker: {worker}" in server.log(), server.report(f"not a {worker} worker")
    body = server.get_json(f"/naps/?prefix=nap&n={JOBS}&seconds=0.1")
    server.send_signal(signal.SIGTERM)

    code = server.wait_exit(EXIT_DEADLINE)
    assert code == 0, server.report(f"gunicorn did not exit cleanly: {code}")
    seen = server.events()
    for i in range(JOBS):
        tag = f"nap-{i}"
        assert count(seen, tag, "start") == 1, server.report(f"{tag} did not start exactly once")
        assert count(seen, tag, "end") == 1, server.report(f"{tag} did not finish exactly once")
    assert {e["pid"] for e in seen} == {body["pid"]}, server.report("a job ran in another process")
    assert "did not finish" not in server.log(), server.report("the drain reported lost jobs")


def test_hung_job_does_not_hold_the_worker_past_the_shutdown_timeout(
    start: ServerFactory,
) -> None:
    """A 60 s job does not keep gunicorn alive past the 2 s drain, and is logged as unfinished."""
    server = start(
        "gunicorn-sync",
        gunicorn_argv("-k", "sync", "--workers", "1"),
        env={"RAINCHECK_TEST_SHUTDOWN_TIMEOUT": "2"},
    )
    server.get_json("/naps/?prefix=hung&n=1&seconds=60")
    server.wait_for_events(lambda seen: count(seen, "hung-0", "start") == 1, "the job to start")

    stopping = time.monotonic()
    server.send_signal(signal.SIGTERM)
    code = server.wait_exit(EXIT_DEADLINE)
    took = time.monotonic() - stopping

    assert code is not None, server.report(
        f"gunicorn still running {EXIT_DEADLINE} s after SIGTERM"
    )
    assert took < EXIT_DEADLINE
    warnings = [
        line
        for line in server.log().splitlines()
        if line.startswith("WARNING raincheck") and "did not finish" in line
    ]
    assert len(warnings) == 1, server.report("no single raincheck warning about unfinished jobs")
    assert "1 job(s)" in warnings[0], server.report("the warning miscounts the unfinished jobs")
    assert "tests.servers.project.jobs.nap" in warnings[0], server.report("the job is not named")
    assert count(server.events(), "hung-0", "end") == 0, server.report("the hung job finished?")
