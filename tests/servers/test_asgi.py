"""ASGI: a client that goes away before the response (docs/servers.rst, "Clients that go away").

When the client disconnects, Django 5.2 to 6.1 cancel an async view and send
``request_finished`` themselves (5.2 and 6.0: ``asyncio.wait`` then
``request_finished``; 6.1: a ``TaskGroup``); Django 4.2 does not notice and lets the view finish,
its response going nowhere, then sends ``request_finished`` as usual. Either
way the abandoned request's jobs are handed off at its own end.

A server can also cancel the whole application: daphne does so when an
application is still running ``--application-close-timeout`` seconds after
its client left (a slow sync view, say). Then nothing sends
``request_finished``: raincheck finds the request's buffer through asgiref's
per-request context once the garbage collector frees that context, logs a
WARNING, and hands the jobs off at the next ``request_started`` (or at exit).
``on_success`` jobs of such a request are skipped: it never answered.

In both cases a later request E holds its view open until the abandoned
request's job has run: the job is handed off on its own, never with E's jobs
at E's end.
"""

from __future__ import annotations

import signal
import socket

import django
import pytest

from tests.servers.catalog import spec
from tests.servers.checks import EXIT_DEADLINE
from tests.servers.conftest import ONE_WORKER, ServerFactory
from tests.servers.harness import Event, Server, count, daphne_argv, only, position

pytestmark = pytest.mark.server

ORPHAN_WARNING = "of an ASGI request that ended without request_finished"
VIEW_ENDS = ("view-cancelled", "view-return")


def abandon(server: Server, path: str, tag: str) -> None:
    """Send GET ``path`` on a raw connection and close it once the view has started.

    The test notes ``client-gone`` *before* it closes the socket: whatever the
    server does about the disconnect (cancel the view, send request_finished,
    run the job) can then only come after the note in the events file. Noted
    after the close, it raced the server, which on a busy machine could run
    the job before this process got to write the note.
    """
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        server.wait_for_events(lambda seen: count(seen, tag, "view-entered") == 1, f"{tag}'s view")
        server.note(tag, "client-gone")


def view_end(seen: list[Event], tag: str) -> int:
    """The position of the one event that ends ``tag``'s view: cancelled, or returned."""
    ends = [i for i, e in enumerate(seen) if e["tag"] == tag and e["event"] in VIEW_ENDS]
    assert len(ends) == 1, f"{tag}'s view did not end exactly once: {[seen[i] for i in ends]}"
    return ends[0]


def check_handed_off_alone(server: Server, gone: str, later: str) -> None:
    """Request ``later`` waits in its view for job ``gone``: it must run meanwhile, once."""
    body = server.get_json(f"/hold-async/?tag={later}&wait_for={gone}")
    seen = server.wait_for_events(lambda seen: count(seen, later, "end") == 1, f"job {later}")
    assert body["saw_other"], server.report(f"job {gone} did not run while {later} was open")
    assert count(seen, gone, "start") == 1, server.report(f"job {gone} did not run exactly once")
    assert only(seen, gone, "start")["thread"].startswith("raincheck-")
    assert position(seen, gone, "start") > position(seen, gone, "client-gone")
    # Handed off at its own request's end: after its view ended (both recorded
    # by the server), and before request E answered.
    assert position(seen, gone, "start") > view_end(seen, gone), server.report(
        f"job {gone} started before its view ended"
    )
    assert position(seen, gone, "start") < position(seen, later, "response-sent")
    assert count(seen, later, "start") == 1, server.report(f"job {later} did not run once")
    assert position(seen, later, "start") > position(seen, later, "response-sent")


def test_uvicorn_client_gone_before_the_response(start: ServerFactory) -> None:
    """Under uvicorn, an abandoned request's job runs once, at its own end, and is not lost."""
    uvicorn = spec("uvicorn")
    server = start(uvicorn.id, uvicorn.argv, env=ONE_WORKER, stop_signal=uvicorn.stop_signal)
    abandon(server, "/abandoned/?tag=D", "D")
    # Django 4.2 does not cancel the view: let it return (its response goes nowhere).
    (server.workdir / "markers" / "D-gone").touch()
    check_handed_off_alone(server, "D", "E")
    seen = server.events()
    # Django >= 5.0 usually cancels the view when it sees the disconnect, but
    # under load the view may return first: either way it ends exactly once
    # (check_handed_off_alone has checked that).
    if django.VERSION < (5, 0):
        assert count(seen, "D", "view-return") == 1, server.report("the view did not return")
    assert ORPHAN_WARNING not in server.log(), server.report("request_finished was not sent?")


def test_daphne_cancelled_application_hands_its_jobs_off_later(start: ServerFactory) -> None:
    """When daphne kills an abandoned application, its job still runs once, with a WARNING."""
    daphne = spec("daphne")
    reason = daphne.skip_reason()
    if reason:
        pytest.skip(reason)
    server = start(
        daphne.id,
        daphne_argv("--application-close-timeout", "1"),
        env=ONE_WORKER,
        stop_signal=daphne.stop_signal,
    )
    # A sync view cannot be cancelled: it outlives the close timeout, and daphne
    # cancels Django's handler while request_finished waits behind the view.
    abandon(server, "/hold/?tag=D&wait_for=D-gone", "D")
    server.wait_for_log("took too long to shut down and was killed", timeout=20)
    (server.workdir / "markers" / "D-gone").touch()
    server.wait_for_events(lambda seen: count(seen, "D", "view-return") == 1, "D's view to return")

    # Job D is handed off at the first request_started after the garbage
    # collector frees D's context, or at exit if nothing ever does.
    for tag in ("E", "F"):
        server.get_json(f"/quick-async/?tag={tag}")
    server.wait_for_events(lambda seen: count(seen, "F", "end") == 1, "job F")
    server.send_signal(signal.SIGTERM)
    assert server.wait_exit(EXIT_DEADLINE) == 0, server.report("daphne did not stop cleanly")

    # The late hand-off logs a WARNING, and skips a buffer that some request's
    # end already handed off: one WARNING and one run mean it was that hand-off.
    warnings = [line for line in server.log().splitlines() if ORPHAN_WARNING in line]
    assert len(warnings) == 1, server.report("the late hand-off was not logged once")
    assert "1 job(s)" in warnings[0]
    seen = server.events()
    assert count(seen, "D", "start") == 1, server.report("job D did not run exactly once")
    assert only(seen, "D", "start")["thread"].startswith("raincheck-")
    assert position(seen, "D", "start") > position(seen, "D", "client-gone")
    assert position(seen, "D", "start") > view_end(seen, "D")
    for tag in ("E", "F"):
        assert count(seen, tag, "start") == 1, server.report(f"job {tag} did not run once")
        assert position(seen, tag, "start") > position(seen, tag, "response-sent")
