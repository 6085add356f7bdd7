"""A job carries its own request's context into the observability libraries, on real servers.

Each test starts a server with one library set up as docs/observability.rst
says (tests/servers/project/observability.py), then runs two overlapping
requests: request A schedules job A and holds its view open until job B has
run; request B schedules job B and answers at once. The pool has one thread,
started by request B's hand-off, and job A runs on it once A has answered.

So a job that ran in its worker thread's context instead of its own would be
caught both ways: a fresh thread knows nothing of any request (a
``ContextVar``'s default, no ``request_id``, no current span), and Sentry's
threading integration copies into a thread the scope that was current when it
started, here request B's, which job A would then report as its own.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from tests.servers.catalog import ServerSpec, params, spec
from tests.servers.conftest import ONE_WORKER, ServerFactory
from tests.servers.harness import Event, Server, ServerError, count, only, wait_until
from tests.servers.project.observability import ENV, WAIT_SECONDS

# The files the servers write (tests/servers/project/observe_structlog.py and
# observe_sentry.py, which import the libraries).
STRUCTLOG_FILE = "structlog.jsonl"
SENTRY_FILE = "sentry.jsonl"

pytestmark = pytest.mark.server

ROWS = params([spec("gunicorn-gthread"), spec("uvicorn")])
JOB = "tests.servers.project.observability.observed"
TIMEOUT = 15.0

# The distributions each library of the scenario needs: (importable module, pip name).
NEEDS = {
    "contextvar": (),
    "structlog": (("django_structlog", "django-structlog"),),
    "otel": (
        ("opentelemetry.sdk", "opentelemetry-sdk"),
        ("opentelemetry.instrumentation.django", "opentelemetry-instrumentation-django"),
        ("opentelemetry.instrumentation.asgi", "opentelemetry-instrumentation-asgi"),
    ),
    "sentry-logging": (("sentry_sdk", "sentry-sdk"),),
    "sentry-recipe": (("sentry_sdk", "sentry-sdk"),),
}


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:  # a parent package is missing
        return False


def start_with(start: ServerFactory, server_spec: ServerSpec, library: str) -> Server:
    """Start ``server_spec`` with one pool thread and ``library`` set up (skip if missing)."""
    missing = [name for module, name in NEEDS[library] if not _installed(module)]
    if missing:
        pytest.skip(
            f"{', '.join(missing)} not installed (pip install --group observability)",
        )
    return start(
        server_spec.id,
        server_spec.argv,
        env={**ONE_WORKER, **server_spec.env, ENV: library},
        stop_signal=server_spec.stop_signal,
    )


Scenario = tuple[str, str, str]  # (view path prefix, tag of request A, tag of request B)


def scenarios(server_spec: ServerSpec) -> list[Scenario]:
    """A sync view everywhere; an async view too under ASGI."""
    if server_spec.asgi:
        return [("/observe-async/", "A-async", "B-async"), ("/observe/", "A-sync", "B-sync")]
    return [("/observe/", "A", "B")]


def overlap(server: Server, view: str, a: str, b: str) -> tuple[Any, Any, list[Event]]:
    """Run requests A and B, overlapping as the module says; their bodies and the events."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-a") as client:
        slow = client.submit(server.get_json, f"{view}{a}/?wait_for={b}")
        server.wait_for_events(lambda seen: count(seen, a, "view-entered") == 1, f"{a}'s view")
        fast = server.get_json(f"{view}{b}/")
        body_a = slow.result(timeout=WAIT_SECONDS + TIMEOUT)
    seen = server.wait_for_events(
        lambda seen: count(seen, a, "job") == 1 and count(seen, b, "job") == 1,
        f"jobs {a} and {b}",
    )
    assert body_a["saw_other"], server.report(f"job {b} never ran while request {a} was open")
    return body_a, fast, seen


def wait_for_lines(
    server: Server, path: Path, key: Callable[[dict[str, Any]], object], wanted: set[str]
) -> list[dict[str, Any]]:
    """Poll the JSON-lines file ``path`` until ``key`` of its lines covers ``wanted``."""
    lines: list[dict[str, Any]] = []

    def ready() -> bool:
        nonlocal lines
        try:
            text = path.read_text()
        except FileNotFoundError:
            return False
        lines = [json.loads(line) for line in text.splitlines(keepends=True) if line.endswith("\n")]
        return wanted <= {key(line) for line in lines}

    wait_until(ready, f"{sorted(wanted)} in {path.name}", server, TIMEOUT)
    return lines


@pytest.mark.parametrize("server_spec", ROWS)
def test_each_job_sees_its_own_requests_context_variable(
    start: ServerFactory, server_spec: ServerSpec
) -> None:
    """A ContextVar set by middleware reads, in each job, as its own request set it."""
    server = start_with(start, server_spec, "contextvar")
    for view, a, b in scenarios(server_spec):
        body_a, body_b, seen = overlap(server, view, a, b)
        for tag, body in ((a, body_a), (b, body_b)):
            assert body["request_path"] == f"{view}{tag}/"
            job = only(seen, tag, "job")
            assert job["request_path"] == body["request_path"], server.report(
                f"job {tag} saw {job['request_path']!r}"
            )


@pytest.mark.parametrize("server_spec", ROWS)
def test_a_jobs_structlog_line_has_its_requests_request_id(
    start: ServerFactory, server_spec: ServerSpec
) -> None:
    """With django-structlog, a line a job logs has its own request's request_id."""
    server = start_with(start, server_spec, "structlog")
    for view, a, b in scenarios(server_spec):
        body_a, body_b, _ = overlap(server, view, a, b)
        assert body_a["request_id"] != body_b["request_id"]
        lines = wait_for_lines(
            server, server.workdir / STRUCTLOG_FILE, lambda line: line.get("tag"), {a, b}
        )
        for tag, body in ((a, body_a), (b, body_b)):
            (line,) = [line for line in lines if line.get("tag") == tag]
            assert line["event"] == "job ran"
            assert line["raincheck_job"] == JOB
            assert line.get("request_id") == body["request_id"], server.report(
                f"job {tag} logged {line!r}, its request's request_id is {body['request_id']}"
            )


@pytest.mark.parametrize("server_spec", ROWS)
def test_a_span_started_in_a_job_is_a_child_of_its_requests_span(
    start: ServerFactory, server_spec: ServerSpec
) -> None:
    """With OpenTelemetry, a job's span has its request's span as parent, in the same trace."""
    server = start_with(start, server_spec, "otel")
    for view, a, b in scenarios(server_spec):
        body_a, body_b, _ = overlap(server, view, a, b)
        assert body_a["trace_id"] != body_b["trace_id"]
        spans: list[dict[str, Any]] = []

        def jobs_ended(a: str = a, b: str = b) -> bool:
            nonlocal spans
            spans = server.get_json("/spans/")["spans"]
            return {f"job {a}", f"job {b}"} <= {span["name"] for span in spans}

        wait_until(jobs_ended, f"the spans of jobs {a} and {b}", server, TIMEOUT)
        for tag, body in ((a, body_a), (b, body_b)):
            (request_span,) = [span for span in spans if span["span_id"] == body["span_id"]]
            assert request_span["kind"] == "SERVER", server.report(f"{request_span!r}")
            (job_span,) = [span for span in spans if span["name"] == f"job {tag}"]
            assert job_span["trace_id"] == body["trace_id"], server.report(
                f"job {tag}'s span {job_span!r} is not in its request's trace {body['trace_id']}"
            )
            assert job_span["parent_id"] == body["span_id"], server.report(
                f"job {tag}'s span {job_span!r} is not a child of its request's {request_span!r}"
            )


def failure(event: dict[str, Any]) -> str:
    """The message of the exception a Sentry event reports."""
    values = event.get("exception", {}).get("values") or [{}]
    return str(values[-1].get("value"))


@pytest.mark.parametrize("server_spec", ROWS)
@pytest.mark.parametrize("library", ["sentry-logging", "sentry-recipe"])
def test_a_failing_jobs_sentry_event_has_its_own_requests_tags_and_url(
    start: ServerFactory, server_spec: ServerSpec, library: str
) -> None:
    """With sentry-sdk, a job's failure is reported once, with its request's tags and URL.

    ``sentry-logging``: through the logging integration (the ERROR that
    raincheck logs); ``sentry-recipe``: through docs/observability.rst's
    ``job_failed`` receiver, with the ``raincheck`` logger ignored.
    """
    server = start_with(start, server_spec, library)
    for view, a, b in scenarios(server_spec):
        overlap(server, view, a, b)
        messages = {tag: f"job {tag} failed on purpose" for tag in (a, b)}
        events = wait_for_lines(
            server, server.workdir / SENTRY_FILE, failure, set(messages.values())
        )
        for tag, message in messages.items():
            reported = [event for event in events if failure(event) == message]
            if len(reported) != 1:
                raise ServerError(server.report(f"job {tag} was reported {len(reported)} times"))
            (event,) = reported
            tags, url = event.get("tags", {}), event.get("request", {}).get("url", "")
            assert tags.get("request") == tag, server.report(f"job {tag}'s event has {tags}")
            assert url.endswith(f"{view}{tag}/"), server.report(f"job {tag}'s event has {url}")
            if library == "sentry-recipe":
                assert tags.get("raincheck.job") == JOB
