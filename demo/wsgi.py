"""The WSGI application, wrapped to record when the server has sent each response.

A WSGI server calls the response's ``close()`` once it has written the last byte
to the socket. The wrapper's ``close()`` records that moment and then calls
Django's, which sends ``request_finished``: that is where raincheck hands the
request's jobs to its pool. So each "response complete" event is the server's
own word that the client has the whole response on the wire.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from django.core.wsgi import get_wsgi_application

from demo.events import emit

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "demo.settings")

django_application = get_wsgi_application()


class RecordedResponse:
    """A response body that records "response complete" when the server closes it."""

    def __init__(self, body: Iterable[bytes], path: str, status: list[str]) -> None:
        self.body = body
        self.path = path
        self.status = status

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.body)

    def close(self) -> None:
        status = int(self.status[0].split()[0]) if self.status else 0
        emit("response", path=self.path, status=status)
        close = getattr(self.body, "close", None)
        if close is not None:
            close()


def record_responses(app: WSGIApplication) -> WSGIApplication:
    def wrapped(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        status: list[str] = []

        def start(status_line: str, headers: Any, exc_info: Any = None) -> Any:
            status.append(status_line)
            return start_response(status_line, headers, exc_info)

        query = environ.get("QUERY_STRING", "")
        path = environ.get("PATH_INFO", "") + (f"?{query}" if query else "")
        return RecordedResponse(app(environ, start), path, status)

    return wrapped


application = record_responses(django_application)
