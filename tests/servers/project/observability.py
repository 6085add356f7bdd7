"""The observability libraries of tests/servers/test_observability.py, one per server.

``$RAINCHECK_TEST_OBSERVE`` names the one a server runs with (``contextvar``,
``structlog``, ``otel``, ``sentry-logging`` or ``sentry-recipe``); settings.py,
wsgi.py and asgi.py set it up as docs/observability.rst says, and nothing here
imports a library that the server does not use. The views of the scenario
(``observe``, ``observe_async``) and its job (``observed``) are here too: each
reports what it sees of its request through the events file, so the test can
compare a job with the request that scheduled it.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse, JsonResponse

from raincheck import raincheck
from tests.servers.project.events import (
    POLL_SECONDS,
    has_marker,
    record,
    set_marker,
    test_dir,
    wait_for_marker,
)

if TYPE_CHECKING:
    from sentry_sdk.envelope import Envelope

ENV = "RAINCHECK_TEST_OBSERVE"
LIBRARY = os.environ.get(ENV, "")
STRUCTLOG_FILE = "structlog.jsonl"
SENTRY_FILE = "sentry.jsonl"
# A DSN that names no real host: the transport below keeps every event in this
# process, so nothing is ever sent (and port 9 on the loopback is "discard").
SENTRY_DSN = "http://key@127.0.0.1:9/1"
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


# -- settings.py -----------------------------------------------------------------------


def structlog_logging(filename: str) -> dict[str, Any]:
    """settings.LOGGING for django-structlog: every structlog event as JSON to ``filename``."""
    import structlog

    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processor": structlog.processors.JSONRenderer(),
            },
        },
        "handlers": {
            "json_file": {
                "class": "logging.FileHandler",
                "filename": filename,
                "formatter": "json",
            },
        },
        "loggers": {
            "django_structlog": {"handlers": ["json_file"], "level": "INFO"},
            "tests": {"handlers": ["json_file"], "level": "INFO"},
        },
    }


def configure_structlog() -> None:
    """docs/observability.rst's structlog.configure(): contextvars merged, the job's name added."""
    import structlog

    from raincheck.logs import add_job_name

    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            add_job_name,
            structlog.stdlib.filter_by_level,
            structlog.processors.TimeStamper(fmt="iso"),
            structlog.stdlib.add_logger_name,
            structlog.stdlib.add_log_level,
            structlog.processors.format_exc_info,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=True,
    )


def collect_sentry_events(envelope: Envelope) -> None:
    """Append each event of ``envelope`` to this server's ``sentry.jsonl``, as Sentry got it."""
    for item in envelope.items:
        if item.type == "event":
            event = json.loads(item.payload.get_bytes())
            line = (json.dumps(event, sort_keys=True) + "\n").encode()
            # One write on an O_APPEND file: lines of concurrent jobs never interleave.
            fd = os.open(test_dir() / SENTRY_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line)
            finally:
                os.close(fd)


def init_sentry(*, report_through_receiver: bool) -> None:
    """docs/observability.rst's sentry_sdk.init(), with a transport that never sends."""
    import sentry_sdk
    from sentry_sdk.integrations.django import DjangoIntegration
    from sentry_sdk.integrations.logging import ignore_logger
    from sentry_sdk.transport import Transport

    class CollectingTransport(Transport):
        """Keeps events in this process: the tests read them, no network is used."""

        def capture_envelope(self, envelope: Envelope) -> None:
            collect_sentry_events(envelope)

    sentry_sdk.init(
        dsn=SENTRY_DSN,
        integrations=[DjangoIntegration()],
        transport=CollectingTransport,
    )
    if report_through_receiver:
        # The receiver reports each failure; the logging integration would report it again.
        ignore_logger("raincheck")


# -- wsgi.py and asgi.py: OpenTelemetry, before Django loads its middleware -------------

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

span_exporter: InMemorySpanExporter | None = None


def instrument_opentelemetry() -> None:
    """docs/observability.rst's OpenTelemetry setup, exporting to memory (``/spans/`` reads it)."""
    global span_exporter
    from opentelemetry import trace
    from opentelemetry.instrumentation.django import DjangoInstrumentor
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    span_exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    trace.set_tracer_provider(provider)
    DjangoInstrumentor().instrument()


def spans(request: HttpRequest) -> JsonResponse:
    """Every span the in-memory exporter holds: ids in hex, parent, kind and attributes."""
    assert span_exporter is not None, f"{ENV}=otel is not set"
    found = []
    for span in span_exporter.get_finished_spans():
        context = span.get_span_context()
        assert context is not None
        found.append(
            {
                "name": span.name,
                "kind": span.kind.name,
                "trace_id": f"{context.trace_id:032x}",
                "span_id": f"{context.span_id:016x}",
                "parent_id": None if span.parent is None else f"{span.parent.span_id:016x}",
                "attributes": {key: str(value) for key, value in (span.attributes or {}).items()},
            }
        )
    return JsonResponse({"spans": found})


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


# -- the job_failed recipe of docs/observability.rst ---------------------------------------


def connect_sentry_receiver() -> None:
    """Connect docs/observability.rst's ``job_failed`` receiver (in the project's AppConfig)."""
    import sentry_sdk
    from django.dispatch import receiver

    from raincheck.signals import job_failed

    @receiver(job_failed, weak=False)
    def report_job_failure(
        sender: Callable[..., Any],
        exception: BaseException,
        args: Sequence[Any],
        kwargs: dict[str, Any],
        **extra: Any,
    ) -> None:
        with sentry_sdk.new_scope() as scope:
            scope.set_tag("raincheck.job", f"{sender.__module__}.{sender.__qualname__}")
            scope.set_context("raincheck", {"args": repr(args), "kwargs": repr(kwargs)})
            sentry_sdk.capture_exception(exception)
