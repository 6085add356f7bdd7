"""WSGI entry point: Django's handler, wrapped to record when a response is sent.

A WSGI server calls the response's ``close()`` after it has written the whole
body; Django's ``close()`` sends ``request_finished``. The wrapper records
``response-sent`` just before that, so a job that starts before its own
request's ``response-sent`` line started before its response was complete.

Two query parameters hold the request in the server after its last byte:
``pause=S`` for ``S`` seconds before Django's ``close()`` (so before
``request_finished``), ``linger=M`` after it until the marker ``M`` exists;
each records an event first (``paused``, ``lingering``).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.servers.project.settings")

from django.core.wsgi import get_wsgi_application

from tests.servers.project import observability
from tests.servers.project.events import record, wait_for_marker

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

if observability.LIBRARY == "otel":
    # Before Django builds its middleware chain, which the instrumentation joins.
    from tests.servers.project import observe_otel  # noqa: F401

django_application = get_wsgi_application()


# How long a lingering ``close()`` waits for its marker.
HOLD_SECONDS = 10.0


class _RecordSent:
    def __init__(
        self, response: Iterable[bytes], tag: str, pause: float | None, linger: str | None
    ) -> None:
        self.response = response
        self.tag = tag
        self.pause = pause
        self.linger = linger

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.response)

    def close(self) -> None:
        record(self.tag, "response-sent")
        if self.pause is not None:
            # The client has the response; request_finished has not been sent.
            record(self.tag, "paused")
            time.sleep(self.pause)
        close = getattr(self.response, "close", None)
        if close is not None:
            close()
        if self.linger is not None:
            # The response is complete and its jobs handed off, but the server still
            # counts the request as in progress until this returns.
            record(self.tag, "lingering")
            wait_for_marker(self.linger, HOLD_SECONDS)


def query_value(query_string: str, name: str) -> str | None:
    values = parse_qs(query_string).get(name)
    return values[0] if values else None


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    response = django_application(environ, start_response)
    query = environ.get("QUERY_STRING", "")
    tag = query_value(query, "tag")
    if tag is None:
        return response
    pause = query_value(query, "pause")
    return _RecordSent(
        response, tag, None if pause is None else float(pause), query_value(query, "linger")
    )
