"""``block`` and ``caller_runs`` under ASGI: a request waits for room as it starts
(raincheck.admission).

Through Django's real ASGI handler, which gives each request its own
``ThreadSensitiveContext`` (``AsyncClient`` does not, and its requests never wait).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import pytest
from django.core.handlers.asgi import ASGIHandler
from django.http import HttpRequest
from django.test import Client, override_settings

import raincheck
from raincheck import admission
from tests.app import jobs
from tests.app.helpers import hold_the_worker, in_thread
from tests.app.jobs import HOLD_LIMIT
from tests.app.views import hooks

FULL = {
    "RAINCHECK_MAX_WORKERS": 1,
    "RAINCHECK_MAX_QUEUE": 10,
    "RAINCHECK_BACKPRESSURE": "block",
    "RAINCHECK_BLOCK_TIMEOUT": 30.0,
}


def asgi_get(path: str) -> int:
    """One GET through ``ASGIHandler`` on an event loop of its own; the response's status."""
    sent: list[Mapping[str, Any]] = []
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "headers": [(b"host", b"testserver")],
        "server": ("testserver", 80),
        "client": ("127.0.0.1", 50000),
    }
    body_read = False

    async def receive() -> dict[str, Any]:
        nonlocal body_read
        if not body_read:
            body_read = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await asyncio.Event().wait()  # the client stays connected
        raise AssertionError("unreachable")

    async def send(message: Mapping[str, Any]) -> None:
        sent.append(message)

    asyncio.run(ASGIHandler()(scope, receive, send))
    status: int = sent[0]["status"]
    return status


def fill_the_queue() -> jobs.Gate:
    """Hold the one worker and queue jobs until the queue is full enough to wait."""
    gate = hold_the_worker()
    for i in range(9):
        jobs.remember.schedule(f"queued {i}")
    return gate


def records_the_gate(gate: jobs.Gate) -> None:
    """The hooked view records whether ``gate`` was released when it ran."""

    def view(request: HttpRequest) -> None:
        jobs.record("view", f"view ran, released: {gate.release.is_set()}")

    hooks["record"] = view


def wait_until_a_request_waits() -> None:
    with admission.changed:
        assert admission.changed.wait_for(lambda: admission.waiting == 1, HOLD_LIMIT)


@pytest.mark.parametrize("policy", ["block", "caller_runs"])
def test_an_asgi_request_waits_for_room_before_its_view_runs(policy: str) -> None:
    """``caller_runs`` too: a request ending on a thread of its own would run its
    jobs there while the server takes the next request, and such threads would
    pile up with the request rate (803 in 10 s of 200 ms jobs under uvicorn)."""
    with override_settings(**{**FULL, "RAINCHECK_BACKPRESSURE": policy}):
        gate = fill_the_queue()
        records_the_gate(gate)
        statuses: list[int] = []
        join = in_thread(lambda: statuses.append(asgi_get("/hook/record/")))
        wait_until_a_request_waits()
        gate.release.set()
        join()
    assert statuses == [200]
    assert "view ran, released: True" in jobs.values()
    assert raincheck.stats().ran_in_caller == 0


@pytest.mark.parametrize("policy", ["drop", "drop_oldest"])
def test_policies_that_drop_never_make_a_request_wait(policy: str) -> None:
    with override_settings(**{**FULL, "RAINCHECK_BACKPRESSURE": policy}):
        gate = fill_the_queue()
        records_the_gate(gate)
        assert asgi_get("/hook/record/") == 200
    assert "view ran, released: False" in jobs.values()
    gate.release.set()


@override_settings(**{**FULL, "RAINCHECK_BLOCK_TIMEOUT": 0.05})
def test_a_request_runs_once_block_timeout_has_passed() -> None:
    gate = fill_the_queue()
    records_the_gate(gate)
    assert asgi_get("/hook/record/") == 200
    assert "view ran, released: False" in jobs.values()


@override_settings(**FULL)
def test_a_wsgi_request_never_waits_as_it_starts() -> None:
    """Under WSGI a request ends on one of the server's threads: ``block`` waits
    there, as its jobs are handed off (this one has none)."""
    gate = fill_the_queue()
    records_the_gate(gate)
    assert Client().get("/hook/record/").status_code == 200
    assert "view ran, released: False" in jobs.values()
