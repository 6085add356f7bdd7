"""One request's end never hands off another request's jobs (SPEC §3.1), on real servers.

Request A schedules job A, then holds its view open until job B's marker
exists. Request B schedules job B and answers at once. With per-request buffers,
B's end hands off only job B, so job A has not started when A answers. With one
process-wide buffer, B's end would hand off job A too; the pool has a single
worker, so job A would run (and leave its marker) before job B.
"""

from __future__ import annotations

import signal
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.servers.conftest import ServerFactory
from tests.servers.harness import (
    Server,
    count,
    gunicorn_argv,
    only,
    position,
    uvicorn_argv,
)

pytestmark = pytest.mark.server

# One pool thread: a wrongly handed-off job A would run before job B, not beside it.
ONE_WORKER = {"RAINCHECK_TEST_MAX_WORKERS": "1"}


def check_isolation(server: Server, hold: str, quick: str) -> None:
    """Run the A/B scenario against ``server`` and check both requests' jobs."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-a") as client:
        slow = client.submit(server.get_json, f"{hold}?tag=A&wait_for=B")
        server.wait_for_events(lambda seen: count(seen, "A", "view-entered") == 1, "A's view")
        fast = server.get_json(f"{quick}?tag=B")
        body = slow.result(timeout=30)

    seen = server.wait_for_events(
        lambda seen: count(seen, "A", "end") >= 1 and count(seen, "B", "end") >= 1,
        "jobs A and B to finish",
    )
    assert body["saw_other"], server.report("job B never ran while request A was open")
    assert not body["job_started"], server.report("job A started before request A answered")
    for tag in ("A", "B"):
        assert count(seen, tag, "start") == 1, server.report(f"job {tag} did not run once")
    assert position(seen, "A", "start") > position(seen, "A", "response-sent"), server.report(
        "job A started before request A's response was sent"
    )
    assert position(seen, "B", "start") > position(seen, "B", "response-sent"), server.report(
        "job B started before request B's response was sent"
    )
    assert only(seen, "A", "start")["pid"] == body["pid"]
    assert only(seen, "B", "start")["pid"] == fast["pid"]
    assert only(seen, "A", "start")["thread"].startswith("raincheck-")


def test_gunicorn_gthread_requests_hand_off_only_their_own_jobs(start: ServerFactory) -> None:
    """Under gunicorn gthread, a fast request's end does not run a slow request's job."""
    server = start(
        "gunicorn-gthread",
        gunicorn_argv("-k", "gthread", "--threads", "4", "--workers", "1"),
        env=ONE_WORKER,
    )
    check_isolation(server, "/hold/", "/quick/")


@pytest.mark.parametrize(
    ("hold", "quick"),
    [("/hold-async/", "/quick-async/"), ("/hold/", "/quick/")],
    ids=["async-views", "sync-views"],
)
def test_uvicorn_requests_hand_off_only_their_own_jobs(
    start: ServerFactory, hold: str, quick: str
) -> None:
    """Under uvicorn, async or sync views, a fast request's end does not run a slow one's job."""
    server = start(
        "uvicorn",
        uvicorn_argv("--workers", "1"),
        env=ONE_WORKER,
        # uvicorn dies on SIGTERM without exit hooks (FACTS.md §5); SIGINT drains.
        stop_signal=signal.SIGINT,
    )
    check_isolation(server, hold, quick)
