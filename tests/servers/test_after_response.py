"""A job starts only once its request's whole body has been sent, on every server.

The view schedules ``mark(tag)`` and, at the last moment before the body is
complete (in the view for a plain response, before the last chunk of a
``StreamingHttpResponse``, before the last read of a ``FileResponse``), runs a
*checkpoint*: it schedules a probe job from outside the request, which the
pool runs at once, waits for it, and records whether ``mark(tag)`` has
started. The pool has a single thread, so had ``mark(tag)`` been handed off
before the response was complete, it would have run before the probe: the
checkpoint catches that deterministically. The server's wrapper then records
``response-sent`` after the last byte was written, and the job's ``start``
must come after it.
"""

from __future__ import annotations

import pytest

from tests.servers.harness import Server, count, only, position
from tests.servers.project.views import CHUNK, CHUNKS

pytestmark = pytest.mark.server


@pytest.mark.parametrize("kind", ["plain", "stream", "file"])
def test_job_starts_after_the_client_has_the_whole_body(shared_server: Server, kind: str) -> None:
    """A plain, streaming or file response's job starts after its last byte was sent, once."""
    server = shared_server
    tag = f"after-{kind}"
    reply = server.get(f"/respond/?tag={tag}&kind={kind}")
    assert reply.status == 200, server.report(f"/respond/ answered {reply.status}")
    if kind != "plain":
        assert reply.body == CHUNK * CHUNKS, server.report("the body arrived incomplete")

    seen = server.wait_for_events(lambda seen: count(seen, tag, "end") >= 1, f"job {tag}")
    checkpoint = only(seen, tag, "checkpoint")
    assert checkpoint["saw_probe"], server.report("the probe job never ran: no pool?")
    assert not checkpoint["job_started"], server.report(
        f"job {tag} started before the last part of the {kind} body was sent"
    )
    assert count(seen, tag, "start") == 1, server.report(f"job {tag} did not run exactly once")
    order = [position(seen, tag, event) for event in ("checkpoint", "response-sent", "start")]
    assert order == sorted(order), server.report(f"job {tag} started before its response was sent")
    assert count(seen, f"{tag}-probe", "end") == 1, server.report("the probe did not run once")
