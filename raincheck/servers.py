"""What raincheck must know about the server it runs under.

- uWSGI with Python threads disabled never runs the pool's threads (W001): jobs
  then run in the caller, after the response, instead of being lost.
- uvicorn, waitress, ``runserver`` and the workers of ``hypercorn --workers N``
  end the process on SIGTERM without running Python's exit hooks (W002).
  ``RAINCHECK_DRAIN_ON_SIGTERM`` installs a SIGTERM handler that drains the
  pool first and then hands the signal on (raincheck.stopsignals). uvicorn
  stops gracefully first, then raises SIGTERM again to end the process:
  raincheck drains in between (``drain_before_uvicorn_ends``), with no setting.
- gunicorn's workers stop gracefully on SIGTERM, finishing their requests
  first: raincheck notes the signal on its way, so that the stop's deadline
  runs from there (raincheck.stopsignals).
- uWSGI does not run ``atexit`` hooks on every worker exit, so the drain is also
  attached to ``uwsgi.atexit``.
- Celery's prefork pool ends its child processes with ``os._exit()`` right
  after it sends ``worker_process_shutdown``: the drain is connected to it.
- RQ ends its work horse with ``os._exit()`` right after the job, with no hook
  at all: there jobs run in the caller.
"""

from __future__ import annotations

import importlib
import logging
import multiprocessing
import os
import signal
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, Final

logger = logging.getLogger("raincheck")

# Modules whose presence means this process serves requests with a server that
# dies on SIGTERM without running atexit hooks (docs/servers.rst, "SIGTERM").
SIGTERM_FATAL_SERVERS: Final = {
    "uvicorn": "uvicorn",
    "waitress": "waitress",
    "django.core.management.commands.runserver": "runserver",
}

W001_MESSAGE: Final = (
    "uWSGI runs with Python threads disabled, so raincheck's pool threads would never "
    "run: jobs run in the request's thread after the response instead."
)
W001_HINT: Final = "Start uWSGI with --enable-threads (the default since uWSGI 2.0.27)."
W002_HINT: Final = (
    "Set RAINCHECK_DRAIN_ON_SIGTERM = True so queued jobs finish on SIGTERM, "
    "or stop the server with SIGINT."
)
# A worker of a supervisor gets SIGTERM whatever signal the supervisor got: SIGINT
# to `uvicorn --workers N` (its multiprocessing children), gunicorn's UvicornWorker.
W002_WORKER_HINT: Final = (
    "Set RAINCHECK_DRAIN_ON_SIGTERM = True so queued jobs finish on SIGTERM: this "
    "process is a worker its supervisor stops with SIGTERM, whatever signal it got."
)


def uwsgi_module() -> ModuleType | None:
    """The ``uwsgi`` module, which exists only inside a uWSGI process."""
    try:
        return importlib.import_module("uwsgi")
    except ImportError:
        return None


def threads_disabled() -> bool:
    uwsgi = uwsgi_module()
    return uwsgi is not None and not getattr(uwsgi, "has_threads", True)


def in_rq_work_horse() -> bool:
    """Whether this is a process RQ started to run one job (its work horse).

    RQ ends it with ``os._exit()`` as soon as the job returns, with no hook
    before (rq/worker/base.py, ``main_work_horse``): jobs queued on a pool there
    would be lost, so they run in the caller. RQ sets ``RQ_JOB_ID`` in it.
    """
    return "rq" in sys.modules and "RQ_JOB_ID" in os.environ


def jobs_run_in_caller() -> bool:
    """Whether this process can have no pool or loop: their threads would never
    run (uWSGI without threads), or the process ends as its job returns (RQ's
    work horse). The caller runs the jobs instead."""
    return threads_disabled() or in_rq_work_horse()


def sigterm_fatal_server() -> str | None:
    """The name of the SIGTERM-fatal server this process runs under, if any."""
    for module, name in SIGTERM_FATAL_SERVERS.items():
        if module in sys.modules and not (name == "uvicorn" and _uvicorn_drains_first):
            return name
    if "hypercorn" in sys.modules and multiprocessing.parent_process() is not None:
        # A worker of `hypercorn --workers N` handles no signal: once one worker
        # has stopped, hypercorn ends the others with SIGTERM (hypercorn/run.py),
        # maybe in the middle of their exit drain (docs/servers.rst).
        return "hypercorn --workers"
    return None


# Whether this process's uvicorn server was found to raise SIGTERM again once it
# has stopped, which drain_before_uvicorn_ends() turns into a drain: it then no
# longer dies on SIGTERM with its jobs (no W002).
_uvicorn_drains_first = False


def note_uvicorns_handler(handler: object) -> bool:
    """Whether ``handler`` is that of a uvicorn server raincheck can drain before;
    once one is, W002 no longer names uvicorn. Called as raincheck watches it."""
    global _uvicorn_drains_first
    found = _reraising_server(handler) is not None
    _uvicorn_drains_first |= found
    return found


def drain_before_uvicorn_ends(handler: object, drain: Callable[[], None]) -> None:
    """Drain once uvicorn has stopped on SIGTERM, before the process ends.

    uvicorn, stopped by a signal, finishes its requests, puts back the handlers
    it found, and raises the signal again (``Server.capture_signals``). For
    SIGTERM that is usually the default action: the process ends at once,
    without exit hooks, and raincheck's queue with it. So the list it raises
    them from drains first, in the main thread, once the server is done: the
    jobs of its last requests included, within the deadline that began at the
    signal. Then SIGTERM ends the process as uvicorn meant it to. Called as
    uvicorn's handler gets SIGTERM (raincheck.stopsignals); with another
    uvicorn, nothing changes.
    """
    server = _reraising_server(handler)
    if server is not None and not isinstance(server._captured_signals, _DrainFirst):
        server._captured_signals = _DrainFirst(server._captured_signals, drain)


def _reraising_server(handler: object) -> Any:
    """The uvicorn server whose bound method ``handler`` is, if it keeps the list
    of signals it raises again once stopped (``uvicorn/server.py``,
    ``Server.capture_signals``); else None."""
    server = getattr(handler, "__self__", None)
    if type(server).__module__.startswith("uvicorn.") and isinstance(
        getattr(server, "_captured_signals", None), list
    ):
        return server
    return None


class _DrainFirst(list[int]):
    """uvicorn's signals to raise again, which drain first if SIGTERM will end the process."""

    def __init__(self, signums: list[int], drain: Callable[[], None]) -> None:
        super().__init__(signums)
        self._drain = drain

    def __reversed__(self) -> Iterator[int]:
        # uvicorn has put its handlers back by now: SIG_DFL means the end.
        if signal.SIGTERM in self and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
            self._drain()
        return super().__reversed__()


def w002_hint() -> str:
    """W002's advice: SIGINT only helps where it reaches this process."""
    supervised = multiprocessing.parent_process() is not None or "gunicorn" in sys.modules
    return W002_WORKER_HINT if supervised else W002_HINT


def w002_message(server: str) -> str:
    return (
        f"{server} ends the process on SIGTERM without running exit hooks, so jobs still "
        "queued would be lost."
    )


_warned: set[str] = set()


def warn_once_at_first_hand_off(drain_on_sigterm: bool) -> None:
    """Log W001/W002 once per process: servers do not run system checks."""
    if threads_disabled() and "W001" not in _warned:
        _warned.add("W001")
        logger.warning("raincheck.W001: %s %s", W001_MESSAGE, W001_HINT)
    server = sigterm_fatal_server()
    if server is not None and not drain_on_sigterm and "W002" not in _warned:
        _warned.add("W002")
        logger.warning("raincheck.W002: %s %s", w002_message(server), w002_hint())


def attach_uwsgi_exit_hook(drain: Callable[[], None]) -> None:
    """Run the drain from uWSGI's own exit hook too, chaining any existing one."""
    uwsgi = uwsgi_module()
    if uwsgi is None:
        return
    previous = getattr(uwsgi, "atexit", None)

    def on_exit() -> None:
        drain()
        if callable(previous):
            previous()

    uwsgi.atexit = on_exit  # type: ignore[attr-defined]


def attach_celery_exit_hook(drain: Callable[[], None]) -> None:
    """Drain as a Celery prefork child ends, where Celery is already imported.

    billiard's pool worker sends Celery's ``worker_process_shutdown`` and then
    calls ``os._exit()`` (billiard/pool.py, ``Worker._do_exit``): no exit hook of
    Python's or multiprocessing's runs, so jobs that its tasks scheduled would
    be lost. raincheck never imports Celery itself.
    """
    if "celery" not in sys.modules:
        return
    try:
        from celery.signals import worker_process_shutdown
    except ImportError:
        return

    def on_shutdown(**_: Any) -> None:
        drain()

    worker_process_shutdown.connect(on_shutdown, weak=False, dispatch_uid="raincheck.drain")
