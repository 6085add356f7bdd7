"""WSGI entry point: Django's handler, wrapped to record when a response is sent.

A WSGI server calls the response's ``close()`` after it has written the whole
body; Django's ``close()`` sends ``request_finished``. The wrapper records
``response-sent`` just before that, so a job that starts before its own
request's ``response-sent`` line started before its response was complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING
from urllib.parse import parse_qs

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.servers.project.settings")

from django.core.wsgi import get_wsgi_application

from tests.servers.project.events import record

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIEnvironment

django_application = get_wsgi_application()


class _RecordSent:
    def __init__(self, response: Iterable[bytes], tag: str) -> None:
        self.response = response
        self.tag = tag

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.response)

    def close(self) -> None:
        record(self.tag, "response-sent")
        close = getattr(self.response, "close", None)
        if close is not None:
            close()


def tag_of(query_string: str) -> str | None:
    tags = parse_qs(query_string).get("tag")
    return tags[0] if tags else None


def application(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    response = django_application(environ, start_response)
    tag = tag_of(environ.get("QUERY_STRING", ""))
    if tag is None:
        return response
    return _RecordSent(response, tag)
