"""The scenario of tests/servers/test_observability.py: its views, its job, a middleware.

``$RAINCHECK_TEST_OBSERVE`` names the library a server runs with (``contextvar``,
``structlog``, ``otel``, ``sentry-logging`` or ``sentry-recipe``). settings.py,
wsgi.py and asgi.py set it up as docs/observability.rst says (the ``observe_*``
modules and ``sentry_receiver``); nothing here imports a library the server does
not use. The views and the job report what they see of their request through
the events file, so the test compares each job with the request that scheduled it.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse

from raincheck import raincheck
from tests.servers.project.events import (
    POLL_SECONDS,
    has_marker,
    record,
    set_marker,
    wait_for_marker,
)

ENV = "RAINCHECK_TEST_OBSERVE"
LIBRARY = os.environ.get(ENV, "")
# How long a request of the scenario waits for the other request's job.
WAIT_SECONDS = 10.0

# What a request-scoped middleware keeps in a context variable: a request id,
# a tenant, the user... Here, the request's path.
request_path: ContextVar[str] = ContextVar("request_path", default="unset")


def path_middleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    """Set ``request_path`` for the request, as a request-id middleware would."""
    if iscoroutinefunction(get_response):

        async def middleware_async(request: HttpRequest) -> HttpResponse:
            request_path.set(request.path)
            response: HttpResponse = await get_response(request)
            return response

        return markcoroutinefunction(middleware_async)

    def middleware(request: HttpRequest) -> HttpResponse:
        request_path.set(request.path)
        response: HttpResponse = get_response(request)
        return response

    return middleware


path_middleware.sync_capable = True  # type: ignore[attr-defined]
path_middleware.async_capable = True  # type: ignore[attr-defined]


def spans(request: HttpRequest) -> JsonResponse:
    """The spans OpenTelemetry exported in this process (``otel`` only)."""
    from tests.servers.project import observe_otel

    return observe_otel.spans(request)


# -- the scenario: what a request and its job see ------------------------------------------


def seen_here() -> dict[str, Any]:
    """What this code sees of its request through the library under test."""
    seen: dict[str, Any] = {"request_path": request_path.get()}
    if LIBRARY == "structlog":
        import structlog

        seen["request_id"] = structlog.contextvars.get_contextvars().get("request_id")
    elif LIBRARY == "otel":
        from opentelemetry import trace

        context = trace.get_current_span().get_span_context()
        seen["trace_id"] = f"{context.trace_id:032x}"
        seen["span_id"] = f"{context.span_id:016x}"
    return seen


@contextmanager
def job_span(tag: str) -> Iterator[None]:
    """A span around the job's work, with OpenTelemetry; nothing otherwise."""
    if LIBRARY != "otel":
        yield
        return
    from opentelemetry import trace

    with trace.get_tracer(__name__).start_as_current_span(f"job {tag}") as span:
        span.set_attribute("raincheck.test_tag", tag)
        yield


@raincheck
def observed(tag: str) -> None:
    """Record what the job sees of its request and log a line; with Sentry, then fail.

    The marker ``f"{tag}-done"`` tells the other request of the scenario that
    this job has done all of that.
    """
    with job_span(tag):
        record(tag, "job", **seen_here())
        if LIBRARY == "structlog":
            import structlog

            structlog.get_logger(__name__).info("job ran", tag=tag)
    set_marker(f"{tag}-done")
    if LIBRARY.startswith("sentry"):
        raise RuntimeError(f"job {tag} failed on purpose")


def _set_request_tags(tag: str) -> None:
    if LIBRARY.startswith("sentry"):
        import sentry_sdk

        sentry_sdk.set_tag("request", tag)


def _answer(tag: str, saw_other: bool | None) -> JsonResponse:
    seen = seen_here()
    record(tag, "view-return", saw_other=saw_other, **seen)
    return JsonResponse({"pid": os.getpid(), "saw_other": saw_other, **seen})


def observe(request: HttpRequest, tag: str) -> JsonResponse:
    """Tag the request, schedule ``observed(tag)``; with ``wait_for``, wait for that job first."""
    _set_request_tags(tag)
    observed.schedule(tag)
    record(tag, "view-entered")
    wait_for = request.GET.get("wait_for")
    saw_other = None
    if wait_for is not None:
        saw_other = wait_for_marker(f"{wait_for}-done", WAIT_SECONDS)
    return _answer(tag, saw_other)


async def observe_async(request: HttpRequest, tag: str) -> JsonResponse:
    """``observe`` as an async view: it waits with ``asyncio.sleep``."""
    _set_request_tags(tag)
    observed.schedule(tag)
    record(tag, "view-entered")
    wait_for = request.GET.get("wait_for")
    saw_other = None
    if wait_for is not None:
        deadline = time.monotonic() + WAIT_SECONDS
        while not (saw_other := has_marker(f"{wait_for}-done")) and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
    return _answer(tag, saw_other)
