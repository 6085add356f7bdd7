"""gunicorn ``-k gevent``: an async job's event loop never leaks into other greenlets.

gevent's worker monkey-patches ``threading`` before it loads the app, so the
pool's threads and the requests' threads are greenlets of one OS thread, and
asyncio keeps one running loop per OS thread. Had an async job's loop run in a
pool greenlet, every other greenlet would look like async code while the job
awaits, and Django would refuse its database work (``SynchronousOnlyOperation``).
The database is an SQLite file of the test's own.
"""

from __future__ import annotations

import json
import signal
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers.catalog import ServerSpec, params, spec
from tests.servers.checks import EXIT_DEADLINE, FOUR_WORKERS
from tests.servers.conftest import ServerFactory
from tests.servers.harness import Reply, Server, count, only
from tests.servers.project.events import MARKERS_DIR

pytestmark = pytest.mark.server

REQUESTS = 24


def start_with_database(
    start: ServerFactory, spec: ServerSpec, tmp_path: Path, **env: str
) -> Server:
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
    env = {**FOUR_WORKERS, "RAINCHECK_TEST_DATABASE": json.dumps(database), **env}
    return start(spec.id, spec.argv, env=env, stop_signal=spec.stop_signal)


def release(server: Server, marker: str) -> None:
    """Create the marker file ``marker`` that ``sleep_until`` jobs wait for."""
    (server.workdir / MARKERS_DIR / marker).touch()


def assert_ran(server: Server, tag: str) -> None:
    """Job ``tag`` ran once and queried the database without an error."""
    seen = server.wait_for_events(
        lambda seen: count(seen, tag, "end") + count(seen, tag, "error") >= 1, f"job {tag}"
    )
    assert count(seen, tag, "error") == 0, server.report(f"job {tag} failed")
    assert only(seen, tag, "end")["value"] == 1, server.report(f"job {tag} read no row")


@pytest.mark.parametrize("spec", params([spec("gunicorn-gevent")]))
def test_an_awaiting_async_job_leaves_sync_orm_requests_and_jobs_alone(
    start: ServerFactory, tmp_path: Path, spec: ServerSpec
) -> None:
    """While an async job awaits asyncio.sleep, sync ORM requests answer 200, ORM jobs succeed."""
    server = start_with_database(start, spec, tmp_path)
    server.get_json("/sleepy/?tag=sleeper&marker=wake")
    server.wait_for_events(lambda seen: count(seen, "sleeper", "awaiting") == 1, "the async job")

    with ThreadPoolExecutor(max_workers=8, thread_name_prefix="client") as client:
        replies: list[Reply] = list(client.map(lambda _: server.get("/query/"), range(REQUESTS)))
    statuses = [reply.status for reply in replies]
    assert statuses == [200] * REQUESTS, server.report(f"sync ORM requests answered {statuses}")

    # Both ORM jobs run on pool threads beside the awaiting one.
    server.get_json("/query/?tag=orm")
    assert_ran(server, "orm-sync")
    assert_ran(server, "orm-async")
    assert count(server.events(), "sleeper", "end") == 0, server.report("the async job ended early")

    release(server, "wake")
    seen = server.wait_for_events(lambda seen: count(seen, "sleeper", "end") == 1, "the async job")
    assert only(seen, "sleeper", "end")["released"], server.report("the async job timed out")
    assert "SynchronousOnlyOperation" not in server.log(), server.report("Django refused the ORM")


@pytest.mark.parametrize("spec", params([spec("gunicorn-gevent")]))
def test_sigterm_drains_awaiting_async_jobs_within_the_shutdown_timeout(
    start: ServerFactory, tmp_path: Path, spec: ServerSpec
) -> None:
    """SIGTERM: the exit drain waits for an awaiting async job and ORM jobs, not a hung one."""
    server = start_with_database(start, spec, tmp_path, RAINCHECK_TEST_SHUTDOWN_TIMEOUT="5")
    server.get_json("/sleepy/?tag=drained&marker=wake")
    server.get_json("/sleepy/?tag=hung&marker=never")
    server.wait_for_events(
        lambda seen: count(seen, "drained", "awaiting") + count(seen, "hung", "awaiting") == 2,
        "both async jobs to await",
    )
    server.get_json("/query/?tag=orm")
    server.send_signal(signal.SIGTERM)
    # gunicorn logs this as the worker leaves its serving loop, before the exit drain.
    server.wait_for_log("Worker exiting")
    release(server, "wake")

    code = server.wait_exit(EXIT_DEADLINE)
    assert code == 0, server.report(f"not a clean exit after SIGTERM: {code}")
    seen = server.events()
    assert only(seen, "drained", "end")["released"], server.report("the drain did not wait")
    assert count(seen, "hung", "end") == 0, server.report("the hung job finished?")
    assert_ran(server, "orm-sync")
    assert_ran(server, "orm-async")
    unfinished = [line for line in server.log().splitlines() if "did not finish" in line]
    assert len(unfinished) == 1, server.report("no single warning about the unfinished job")
    assert "1 job(s)" in unfinished[0], server.report("the warning miscounts the unfinished jobs")
    assert "sleep_until" in unfinished[0], server.report("the hung job is not named")
