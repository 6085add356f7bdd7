"""One request's end never hands off another request's jobs, on real servers.

Request A schedules job A, then holds its view open until job B's marker
exists. Request B schedules job B and answers at once. With per-request buffers,
B's end hands off only job B, so job A has not started when A answers. With one
process-wide buffer, B's end would hand off job A too; the pool has a single
worker, so job A would run (and leave its marker) before job B.

Servers whose processes serve one request at a time (gunicorn sync, uWSGI
without ``--threads``) run A and B in two processes: the test then shows that
each job runs once, in its own process, after its own response, but it cannot
catch a process-wide buffer, which such a server never shares between requests.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.servers.catalog import ServerSpec
from tests.servers.harness import Server, count, only, position

pytestmark = pytest.mark.server


def check_isolation(
    server: Server, hold: str, quick: str, a: str = "A", b: str = "B"
) -> tuple[int, int]:
    """Run the A/B scenario against ``server``, check both requests' jobs; return their pids."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-a") as client:
        slow = client.submit(server.get_json, f"{hold}?tag={a}&wait_for={b}")
        server.wait_for_events(lambda seen: count(seen, a, "view-entered") == 1, f"{a}'s view")
        fast = server.get_json(f"{quick}?tag={b}")
        body = slow.result(timeout=30)

    seen = server.wait_for_events(
        lambda seen: count(seen, a, "end") >= 1 and count(seen, b, "end") >= 1,
        f"jobs {a} and {b} to finish",
    )
    assert body["saw_other"], server.report(f"job {b} never ran while request {a} was open")
    assert not body["job_started"], server.report(f"job {a} started before request {a} answered")
    for tag in (a, b):
        assert count(seen, tag, "start") == 1, server.report(f"job {tag} did not run once")
        assert position(seen, tag, "start") > position(seen, tag, "response-sent"), server.report(
            f"job {tag} started before request {tag}'s response was sent"
        )
    assert only(seen, a, "start")["pid"] == body["pid"]
    assert only(seen, b, "start")["pid"] == fast["pid"]
    assert only(seen, a, "start")["thread"].startswith("raincheck-")
    return body["pid"], fast["pid"]


def test_requests_hand_off_only_their_own_jobs(
    shared_server: Server, server_spec: ServerSpec
) -> None:
    """While request A is open, request B's end runs job B but never job A."""
    if server_spec.asgi:
        check_isolation(shared_server, "/hold-async/", "/quick-async/", "A-async", "B-async")
        check_isolation(shared_server, "/hold/", "/quick/", "A-sync", "B-sync")
        return
    pid_a, pid_b = check_isolation(shared_server, "/hold/", "/quick/")
    if not server_spec.concurrent:
        assert pid_a != pid_b, shared_server.report("A and B were not served by two processes")
