"""A graceful stop drains the pool, within RAINCHECK_SHUTDOWN_TIMEOUT (docs/design.rst).

Each server is stopped the way its documentation says to stop it gracefully:
gunicorn and daphne with SIGTERM, uvicorn, waitress and runserver with SIGINT
(they die on SIGTERM, see test_sigterm.py), uWSGI through its master FIFO (its
signals are brutal, see test_uwsgi.py). The server finishes its requests, its
process exits normally and raincheck's exit drain runs (docs/design.rst).
Their own kill deadlines (gunicorn's ``graceful_timeout``, uWSGI's
``worker-reload-mercy``) are above the drain deadline used here.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.servers.catalog import ServerSpec, params
from tests.servers.checks import (
    EXIT_DEADLINE,
    FOUR_WORKERS,
    assert_all_ran_once,
    schedule_naps,
)
from tests.servers.conftest import ServerFactory
from tests.servers.harness import count, gunicorn_argv, uvicorn_argv

pytestmark = pytest.mark.server


@pytest.mark.parametrize("spec", params())
def test_graceful_stop_runs_every_queued_job(start: ServerFactory, spec: ServerSpec) -> None:
    """The server's graceful stop, right after a response that queued 30 jobs, runs each once."""
    server = start(spec.id, spec.argv, env=FOUR_WORKERS, stop_signal=spec.stop_signal)
    pid = schedule_naps(server)
    spec.graceful_stop(server)

    code = server.wait_exit(EXIT_DEADLINE)
    assert code == 0, server.report(f"not a clean exit after {spec.stop_name()}: {code}")
    assert_all_ran_once(server, pid)


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

    server.send_signal(signal.SIGTERM)
    # Exiting within EXIT_DEADLINE, well short of the job's 60 s, is the bound.
    code = server.wait_exit(EXIT_DEADLINE)

    assert code is not None, server.report(
        f"gunicorn still running {EXIT_DEADLINE} s after SIGTERM"
    )
    warnings = [
        line
        for line in server.log().splitlines()
        if line.startswith("WARNING raincheck") and "did not finish" in line
    ]
    assert len(warnings) == 1, server.report("no single raincheck warning about unfinished jobs")
    assert "1 job(s)" in warnings[0], server.report("the warning miscounts the unfinished jobs")
    assert "tests.servers.project.jobs.nap" in warnings[0], server.report("the job is not named")
    assert count(server.events(), "hung-0", "end") == 0, server.report("the hung job finished?")


def test_a_stop_under_overload_keeps_to_the_shutdown_timeout_from_sigterm(
    start: ServerFactory,
) -> None:
    """A request thread waiting for room in a full queue (``block``, with a 600 s
    timeout) when SIGTERM comes stops waiting at the 2 s deadline, which runs from
    the signal: its jobs are dropped and named, and the exit drain keeps to the same
    deadline. Before, the worker stayed until the wait ended (or gunicorn killed it),
    and its exit drain then took its own 2 s."""
    server = start(
        "gunicorn-gthread",
        gunicorn_argv(
            "-k", "gthread", "--workers", "1", "--threads", "2", "--graceful-timeout", "60"
        ),
        env={
            "RAINCHECK_TEST_MAX_WORKERS": "1",
            "RAINCHECK_TEST_MAX_QUEUE": "1",
            "RAINCHECK_TEST_BLOCK_TIMEOUT": "600",
            "RAINCHECK_TEST_SHUTDOWN_TIMEOUT": "2",
        },
    )
    server.get_json("/naps/?prefix=hung&n=1&seconds=60")
    server.wait_for_events(lambda seen: count(seen, "hung-0", "start") == 1, "the job to start")
    # One job fits in the queue; the request's thread waits for room for the other two.
    server.get_json("/naps/?prefix=over&n=3&seconds=0.1")

    server.send_signal(signal.SIGTERM)
    code = server.wait_exit(EXIT_DEADLINE)

    assert code == 0, server.report(
        f"gunicorn still running or failed {EXIT_DEADLINE} s after SIGTERM: {code}"
    )
    warnings = [
        line
        for line in server.log().splitlines()
        if line.startswith("WARNING raincheck") and "within the 2.0 s shutdown timeout" in line
    ]
    assert any("2 job(s)" in w and "no room in the queue" in w for w in warnings), server.report(
        "the jobs that found no room were not dropped and named"
    )
    assert any("2 job(s)" in w and "no room" not in w for w in warnings), server.report(
        "the exit drain did not name the running and the queued job"
    )
    seen = server.events()
    assert not [e for e in seen if e["tag"].startswith("over-")], server.report("a late job ran")


def test_uvicorns_single_process_also_keeps_to_the_shutdown_timeout_from_sigint(
    start: ServerFactory,
) -> None:
    """uvicorn's single process installs its signal handlers after it has loaded
    the app, so raincheck watches them from the first request on. A request whose
    last job waits for room in a full queue (``block``, 600 s) when SIGINT comes
    waits no longer than the 2 s deadline: uvicorn waits for that request, so
    before, its stop waited 600 s."""
    server = start(
        "uvicorn",
        uvicorn_argv("--workers", "1"),
        env={
            "RAINCHECK_TEST_MAX_WORKERS": "1",
            "RAINCHECK_TEST_MAX_QUEUE": "2",
            "RAINCHECK_TEST_BLOCK_TIMEOUT": "600",
            "RAINCHECK_TEST_SHUTDOWN_TIMEOUT": "2",
        },
        stop_signal=signal.SIGKILL,
    )
    server.get_json("/naps/?prefix=hung&n=1&seconds=60")
    server.wait_for_events(lambda seen: count(seen, "hung-0", "start") == 1, "the job to start")
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="client") as client:
        # Two of its jobs fit in the queue, the third waits for room.
        late = client.submit(server.get_json, "/naps/?prefix=late&n=3&seconds=0.1&tag=late&pause=1")
        server.wait_for_events(lambda seen: count(seen, "late", "paused") == 1, "the response")
        server.send_signal(signal.SIGINT)
        late.result(timeout=EXIT_DEADLINE)
    code = server.wait_exit(EXIT_DEADLINE)

    assert code is not None, server.report(f"uvicorn still running {EXIT_DEADLINE} s after SIGINT")
    assert "1 job(s) did not finish within the 2.0 s shutdown timeout (no room" in server.log(), (
        server.report("the job that found no room was not dropped and named at the deadline")
    )
    assert not [e for e in server.events() if e["tag"].startswith("late-")], server.report(
        "a late job ran"
    )
