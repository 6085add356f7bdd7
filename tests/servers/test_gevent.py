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
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.servers.catalog import ServerSpec, params, spec
from tests.servers.checks import FOUR_WORKERS
from tests.servers.conftest import ServerFactory
from tests.servers.harness import Reply, Server, count, only
from tests.servers.project.events import MARKERS_DIR

pytestmark = pytest.mark.server

REQUESTS = 24


def start_with_database(start: ServerFactory, spec: ServerSpec, tmp_path: Path) -> Server:
    database = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}
    env = {**FOUR_WORKERS, "RAINCHECK_TEST_DATABASE": json.dumps(database)}
    return start(spec.id, spec.argv, env=env, stop_signal=spec.stop_signal)


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

    (server.workdir / MARKERS_DIR / "wake").touch()
    seen = server.wait_for_events(lambda seen: count(seen, "sleeper", "end") == 1, "the async job")
    assert only(seen, "sleeper", "end")["released"], server.report("the async job timed out")
    assert "SynchronousOnlyOperation" not in server.log(), server.report("Django refused the ORM")
