"""Every server configuration the suite boots, and how each is stopped gracefully.

A test that checks a property on every server is parametrized with
:func:`params`; a server whose package is not installed in this interpreter is
skipped with the reason, never passed.
"""

from __future__ import annotations

import importlib.util
import signal
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.servers.harness import (
    Server,
    daphne_argv,
    granian_argv,
    gunicorn_argv,
    hypercorn_argv,
    runserver_argv,
    uvicorn_argv,
    uwsgi_argv,
    waitress_argv,
)

ArgvFactory = Callable[[int], list[str]]


def _send(sig: signal.Signals) -> Callable[[Server], None]:
    def stop(server: Server) -> None:
        server.send_signal(sig)

    stop.__doc__ = sig.name
    return stop


def _uwsgi_shutdown(server: Server) -> None:
    """master FIFO ``q``"""
    server.uwsgi("q")


@dataclass(frozen=True)
class ServerSpec:
    """One server configuration.

    ``concurrent``: one process serves several requests at once (threads or an
    event loop), so per-request isolation inside a process is put to the test.
    ``graceful_stop``: the server's normal stop, which the suite expects to
    drain the pool (``stop_signal`` is the same as a signal, used for teardown).
    """

    id: str
    package: str
    argv: ArgvFactory
    asgi: bool
    concurrent: bool
    stop_signal: signal.Signals
    graceful_stop: Callable[[Server], None]
    env: dict[str, str] = field(default_factory=dict)

    def skip_reason(self) -> str | None:
        """Why this server cannot run here, or None."""
        if self.package == "pyuwsgi" and sys.platform == "win32":
            return "uWSGI does not run on Windows"
        if importlib.util.find_spec(self.package) is None:
            return f"{self.package} is not installed for {sys.executable}"
        return None

    def stop_name(self) -> str:
        return self.graceful_stop.__doc__ or self.graceful_stop.__name__


UWSGI_PACKAGE = "pyuwsgi"

SERVERS: tuple[ServerSpec, ...] = (
    ServerSpec(
        "runserver",
        "django",
        runserver_argv(),
        asgi=False,
        concurrent=True,
        stop_signal=signal.SIGINT,
        graceful_stop=_send(signal.SIGINT),
    ),
    ServerSpec(
        "gunicorn-sync",
        "gunicorn",
        gunicorn_argv("-k", "sync", "--workers", "2"),
        asgi=False,
        concurrent=False,
        stop_signal=signal.SIGTERM,
        graceful_stop=_send(signal.SIGTERM),
    ),
    ServerSpec(
        "gunicorn-gthread",
        "gunicorn",
        gunicorn_argv("-k", "gthread", "--threads", "4", "--workers", "1"),
        asgi=False,
        concurrent=True,
        stop_signal=signal.SIGTERM,
        graceful_stop=_send(signal.SIGTERM),
    ),
    ServerSpec(
        "gunicorn-gevent",
        # gunicorn's gevent worker monkey-patches the process before it loads the app.
        "gevent",
        gunicorn_argv("-k", "gevent", "--workers", "1"),
        asgi=False,
        concurrent=True,
        stop_signal=signal.SIGTERM,
        graceful_stop=_send(signal.SIGTERM),
    ),
    ServerSpec(
        "uvicorn",
        "uvicorn",
        uvicorn_argv("--workers", "1"),
        asgi=True,
        concurrent=True,
        # SIGTERM ends uvicorn without exit hooks (docs/design.rst); SIGINT drains.
        stop_signal=signal.SIGINT,
        graceful_stop=_send(signal.SIGINT),
    ),
    ServerSpec(
        "daphne",
        "daphne",
        daphne_argv(),
        asgi=True,
        concurrent=True,
        stop_signal=signal.SIGTERM,
        graceful_stop=_send(signal.SIGTERM),
    ),
    ServerSpec(
        "granian",
        "granian",
        # Its workers are multiprocessing children (fork): they end with os._exit().
        # Django does not implement the lifespan protocol ("asginl": none).
        granian_argv("--interface", "asginl", "--workers", "1"),
        asgi=True,
        concurrent=True,
        stop_signal=signal.SIGTERM,
        graceful_stop=_send(signal.SIGTERM),
    ),
    ServerSpec(
        "hypercorn",
        "hypercorn",
        hypercorn_argv(),
        asgi=True,
        concurrent=True,
        stop_signal=signal.SIGTERM,
        graceful_stop=_send(signal.SIGTERM),
    ),
    ServerSpec(
        "waitress",
        "waitress",
        waitress_argv("--threads=4"),
        asgi=False,
        concurrent=True,
        # SIGTERM ends waitress without exit hooks (docs/design.rst); SIGINT drains.
        stop_signal=signal.SIGINT,
        graceful_stop=_send(signal.SIGINT),
    ),
    ServerSpec(
        "uwsgi-prefork",
        UWSGI_PACKAGE,
        # The app is loaded in the master, which then forks the workers.
        uwsgi_argv("--processes", "2"),
        asgi=False,
        concurrent=False,
        stop_signal=signal.SIGINT,
        graceful_stop=_uwsgi_shutdown,
    ),
    ServerSpec(
        "uwsgi-lazy-threads",
        UWSGI_PACKAGE,
        uwsgi_argv("--lazy-apps", "--processes", "1", "--threads", "4"),
        asgi=False,
        concurrent=True,
        stop_signal=signal.SIGINT,
        graceful_stop=_uwsgi_shutdown,
    ),
)

BY_ID = {spec.id: spec for spec in SERVERS}


def params(
    specs: Iterable[ServerSpec] = SERVERS,
    marks: Mapping[str, pytest.MarkDecorator] | None = None,
) -> list[Any]:
    """``pytest.param`` per spec, id'd by the spec, skipped where it cannot run.

    ``marks`` adds a mark (an ``xfail``, say) to the spec of that id.
    """
    result = []
    for spec in specs:
        reason = spec.skip_reason()
        extra = [pytest.mark.skip(reason=reason)] if reason else []
        if marks and spec.id in marks:
            extra.append(marks[spec.id])
        result.append(pytest.param(spec, id=spec.id, marks=extra))
    return result


def spec(server_id: str) -> ServerSpec:
    return BY_ID[server_id]
