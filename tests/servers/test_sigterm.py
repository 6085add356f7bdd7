"""SIGTERM under servers that die on it: RAINCHECK_DRAIN_ON_SIGTERM and raincheck.W002.

uvicorn, waitress and ``runserver --noreload`` end the process on SIGTERM
without running Python's exit hooks (docs/design.rst), which loses the queued
jobs. With ``RAINCHECK_DRAIN_ON_SIGTERM = True``, raincheck's own handler drains
the pool first, then hands the signal on (so the exit status still says
SIGTERM). Without it, raincheck logs ``raincheck.W002`` at the first hand-off,
except under uvicorn, which stops gracefully first and then raises SIGTERM
again: raincheck drains in between (raincheck.servers).

A stop can also land after a response but before its ``request_finished``
(the jobs not handed off yet): ``test_stop_while_a_request_is_finishing`` holds
a request there, for every way of stopping these servers and a few others.
"""

from __future__ import annotations

import dataclasses
import signal
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from tests.servers.catalog import ServerSpec, params, spec
from tests.servers.checks import (
    EXIT_DEADLINE,
    FOUR_WORKERS,
    assert_all_ran_once,
    schedule_naps,
    wait_handed_off,
)
from tests.servers.conftest import ServerFactory
from tests.servers.harness import (
    ASGI_APP,
    Server,
    count,
    gunicorn_argv,
    hypercorn_argv,
    uvicorn_argv,
)

pytestmark = pytest.mark.server

SIGTERM_FATAL = [spec("uvicorn"), spec("waitress"), spec("runserver")]
# Without the setting: uvicorn drains once it has stopped (the others die).
SIGTERM_FATAL_WITHOUT_DRAIN = [spec("waitress"), spec("runserver")]
DRAIN = {**FOUR_WORKERS, "RAINCHECK_TEST_DRAIN_ON_SIGTERM": "1"}
KILLED_BY_SIGTERM = -signal.SIGTERM
# Seconds a request stays between its last byte and request_finished (below
# waitress's 5 s wait for its task threads on Ctrl-C).
PAUSE = 2.0


def w002_lines(server: Server) -> list[str]:
    return [
        line
        for line in server.log().splitlines()
        if line.startswith("WARNING raincheck") and "raincheck.W002:" in line
    ]


@pytest.mark.parametrize("spec", params(SIGTERM_FATAL))
def test_sigterm_with_drain_setting_runs_every_queued_job(
    start: ServerFactory, spec: ServerSpec
) -> None:
    """With RAINCHECK_DRAIN_ON_SIGTERM, SIGTERM after 30 queued jobs runs them all, then exits."""
    server = start(spec.id, spec.argv, env=DRAIN, stop_signal=signal.SIGKILL)
    pid = schedule_naps(server)
    server.send_signal(signal.SIGTERM)

    code = server.wait_exit(EXIT_DEADLINE)
    assert code == KILLED_BY_SIGTERM, server.report(f"exit status {code}, not SIGTERM's")
    assert_all_ran_once(server, pid)
    assert not w002_lines(server), server.report("W002 logged although the setting is on")


@pytest.mark.parametrize("spec", params([spec("gunicorn-gevent"), spec("gunicorn-gthread")]))
def test_drain_setting_under_gunicorn_drains_then_hands_sigterm_to_its_worker(
    start: ServerFactory, spec: ServerSpec
) -> None:
    """Set where gunicorn would drain anyway, the handler still runs every job, then
    gunicorn's worker exits as usual. Under gevent the handler runs in the hub,
    which may not wait: draining there failed (BlockingSwitchOutError) and lost
    the queued jobs uncounted."""
    server = start(spec.id, spec.argv, env=DRAIN, stop_signal=signal.SIGKILL)
    pid = schedule_naps(server)
    server.send_signal(signal.SIGTERM)

    code = server.wait_exit(EXIT_DEADLINE)
    assert code == 0, server.report(f"not a clean exit after SIGTERM: {code}")
    assert_all_ran_once(server, pid)
    assert "Error" not in server.log(), server.report("an error at the stop")


# uvicorn's supervisor: its workers are multiprocessing children it stops with
# SIGTERM, whatever signal it got itself.
UVICORN_WORKERS = dataclasses.replace(
    spec("uvicorn"), id="uvicorn-workers", argv=uvicorn_argv("--workers", "2")
)
UVICORN_WORKER_CLASS = dataclasses.replace(
    spec("uvicorn"),
    id="gunicorn-uvicorn-worker",
    argv=gunicorn_argv("-k", "uvicorn.workers.UvicornWorker", "--workers", "1", app=ASGI_APP),
)
# hypercorn's: its workers stop by themselves, and once one has, it ends the
# others with SIGTERM, which they do not handle, maybe during their exit drain.
HYPERCORN_WORKERS = dataclasses.replace(
    spec("hypercorn"), id="hypercorn-workers", argv=hypercorn_argv("--workers", "2")
)


@pytest.mark.parametrize("spec", params([UVICORN_WORKERS, HYPERCORN_WORKERS]))
def test_drain_setting_drains_workers_stopped_by_their_supervisor(
    start: ServerFactory, spec: ServerSpec
) -> None:
    """SIGINT to ``uvicorn --workers 2`` reaches each worker as SIGTERM, which without
    the setting ends it with its jobs: with it, the worker drains first. hypercorn
    sends it to the worker still draining once the other has stopped: the
    handler lets that drain finish (it used to end the process at once)."""
    server = start(spec.id, spec.argv, env=DRAIN, stop_signal=signal.SIGKILL)
    pid = schedule_naps(server)
    server.send_signal(signal.SIGINT)

    assert server.wait_exit(EXIT_DEADLINE) is not None, server.report(f"{spec.id} did not stop")
    assert_all_ran_once(server, pid)


@pytest.mark.parametrize("spec", params([HYPERCORN_WORKERS]))
def test_w002_names_hypercorn_workers_which_die_on_sigterm(
    start: ServerFactory, spec: ServerSpec
) -> None:
    """Without the setting, a worker of ``hypercorn --workers 2`` logs W002 at its
    first hand-off, with the advice for a worker its supervisor stops."""
    server = start(spec.id, spec.argv, env=FOUR_WORKERS, stop_signal=signal.SIGKILL)
    schedule_naps(server)
    wait_handed_off(server)  # W002 is logged as the first job is handed off
    [w002] = w002_lines(server)
    assert "hypercorn --workers ends the process on SIGTERM" in w002, server.report("W002")
    assert "whatever signal it got" in w002, server.report("W002's hint")


@pytest.mark.parametrize(
    ("spec", "stop"),
    [
        pytest.param(spec("uvicorn"), signal.SIGTERM, id="uvicorn-SIGTERM"),
        # Its supervisor stops each worker with SIGTERM, whatever it got itself.
        pytest.param(UVICORN_WORKERS, signal.SIGINT, id="uvicorn-workers-SIGINT"),
        # gunicorn's worker class from uvicorn: gunicorn's SIGTERM reaches its
        # worker, whose uvicorn server re-raises it once stopped.
        pytest.param(UVICORN_WORKER_CLASS, signal.SIGTERM, id="gunicorn-uvicorn-worker-SIGTERM"),
    ],
)
def test_uvicorn_drains_after_its_graceful_stop_on_sigterm_without_the_setting(
    start: ServerFactory, spec: ServerSpec, stop: signal.Signals
) -> None:
    """uvicorn stops gracefully on SIGTERM, then raises it again to end the process,
    which would end it without exit hooks: raincheck drains in between, so every
    queued job runs with no setting, no W002 is logged, and the process still
    ends by SIGTERM. Before, all of them were lost, silently under ``--workers``."""
    reason = spec.skip_reason()
    if reason:
        pytest.skip(reason)
    server = start(spec.id, spec.argv, env=FOUR_WORKERS, stop_signal=signal.SIGKILL)
    pid = schedule_naps(server)
    wait_handed_off(server)
    server.send_signal(stop)

    code = server.wait_exit(EXIT_DEADLINE)
    assert code is not None, server.report(f"{spec.id} still running after {stop.name}")
    if spec.id == "uvicorn":  # a supervisor's exit status is its own
        assert code == KILLED_BY_SIGTERM, server.report(f"exit status {code}, not SIGTERM's")
    assert_all_ran_once(server, pid)
    assert not w002_lines(server), server.report("W002 logged although uvicorn drains")


@pytest.mark.parametrize("spec", params(SIGTERM_FATAL_WITHOUT_DRAIN))
def test_sigterm_without_drain_setting_logs_w002_once_and_loses_jobs(
    start: ServerFactory, spec: ServerSpec
) -> None:
    """Without the setting, W002 is logged once at the first hand-off; SIGTERM kills the jobs."""
    server = start(spec.id, spec.argv, env=FOUR_WORKERS, stop_signal=signal.SIGKILL)
    # Jobs that can only finish once the marker "never" exists, which it never
    # does before the process is gone: losing them is certain, not a race.
    for prefix in ("first", "second"):
        server.get_json(f"/waits/?prefix={prefix}&n=4&marker=never")
    # Four jobs fill the four workers; which request's come first is the
    # server's business (waitress may end the first request after answering
    # the second), so any four will do.
    server.wait_for_events(
        lambda seen: sum(e["event"] == "start" for e in seen) == 4, "four jobs to start"
    )
    server.send_signal(signal.SIGTERM)

    code = server.wait_exit(EXIT_DEADLINE)
    assert code == KILLED_BY_SIGTERM, server.report(f"exit status {code}, not SIGTERM's")
    assert len(w002_lines(server)) == 1, server.report("W002 not logged exactly once")
    assert spec.id in w002_lines(server)[0], server.report("W002 does not name the server")
    seen = server.events()
    assert not [e for e in seen if e["event"] == "end"], server.report("a job survived SIGTERM")
    assert "did not finish" not in server.log(), server.report("a drain ran after all?")


def _case(server_id: str, stop: signal.Signals, drain: bool) -> Any:
    suffix = "-drain" if drain else ""
    return pytest.param(
        spec(server_id),
        stop,
        DRAIN if drain else FOUR_WORKERS,
        id=f"{server_id}-{stop.name}{suffix}",
    )


@pytest.mark.parametrize(
    ("spec", "stop", "env"),
    [
        _case("uvicorn", signal.SIGTERM, drain=True),
        _case("uvicorn", signal.SIGTERM, drain=False),
        _case("waitress", signal.SIGTERM, drain=True),
        _case("runserver", signal.SIGTERM, drain=True),
        _case("waitress", signal.SIGINT, drain=False),
        _case("runserver", signal.SIGINT, drain=False),
        _case("gunicorn-gthread", signal.SIGTERM, drain=False),
        _case("daphne", signal.SIGTERM, drain=False),
        _case("granian", signal.SIGTERM, drain=False),
    ],
)
def test_stop_while_a_request_is_finishing(
    start: ServerFactory, spec: ServerSpec, stop: signal.Signals, env: dict[str, str]
) -> None:
    """A stop that arrives after the response but before request_finished still runs its jobs."""
    reason = spec.skip_reason()
    if reason:
        pytest.skip(reason)
    server = start(spec.id, spec.argv, env=env, stop_signal=signal.SIGKILL)
    # The wrapper holds the request between its last byte and request_finished
    # for PAUSE seconds: the stop arrives in that window. A server that waits
    # for the request lets it go on after the pause; one that does not has long
    # ended by then.
    n = 8
    pause = f"/naps/?prefix=late&n={n}&seconds=0.05&tag=late&pause={PAUSE}"
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="client") as client:
        reply = client.submit(server.get_json, pause)
        server.wait_for_events(lambda seen: count(seen, "late", "paused") == 1, "the pause")
        pid = reply.result(timeout=10)["pid"]
        server.send_signal(stop)
        server.note("late", "signal-sent")
    code = server.wait_exit(EXIT_DEADLINE)
    assert code is not None, server.report(f"still running {EXIT_DEADLINE} s after {stop.name}")
    assert_all_ran_once(server, pid, prefix="late", n=n)
