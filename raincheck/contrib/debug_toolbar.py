"""A django-debug-toolbar panel: the jobs each request scheduled, and the pool's counters.

Add ``"raincheck.contrib.debug_toolbar.RaincheckPanel"`` to ``DEBUG_TOOLBAR_PANELS``
(docs/observability.rst). Importing this module imports django-debug-toolbar;
nothing else in raincheck does.

While the toolbar records a request, a ``job_scheduled`` receiver is connected
(which closes the direct path, so every job reaches ``schedule()``) and the
request's context holds its recording: a job is listed by the request whose
context scheduled it, never by another request running at the same time.
"""

from __future__ import annotations

import contextlib
import reprlib
import sys
import threading
from collections.abc import Callable
from contextvars import ContextVar, Token
from dataclasses import asdict
from typing import TYPE_CHECKING, Any

from debug_toolbar.panels import Panel
from django.http import HttpRequest, HttpResponse

from raincheck import conf, greenlets, process, scheduling, signals

if TYPE_CHECKING:
    # Only for its type: importing it at run time needs the toolbar's app loaded.
    from debug_toolbar.toolbar import DebugToolbar

__all__ = ["RaincheckPanel", "short_repr"]

# Each argument's repr() is cut to this many characters: an argument may be a
# whole queryset or file, and the panel must stay readable.
MAX_REPR = 120
_repr = reprlib.Repr()
_repr.maxstring = 80
_repr.maxother = 80
_repr.maxlong = 40
_repr.maxlevel = 3


def short_repr(value: object) -> str:
    """``repr(value)``, cut to at most ``MAX_REPR`` characters; never raises."""
    try:
        text = _repr.repr(value)
    except Exception as exc:  # a broken __repr__ must not break the toolbar
        text = f"<{type(value).__name__}: repr() raised {type(exc).__name__}>"
    return text if len(text) <= MAX_REPR else text[: MAX_REPR - 3] + "..."


class Recording:
    """The jobs scheduled in one request while the toolbar records it."""

    __slots__ = ("jobs", "open")

    def __init__(self) -> None:
        self.jobs: list[dict[str, Any]] = []
        self.open = True


# Set in the request's own context: a job scheduled by another request's thread
# or task sees that request's recording, or none.
_recording: ContextVar[Recording | None] = ContextVar("raincheck_toolbar_recording", default=None)
_listening_lock = threading.Lock()
_listening = 0


def _record(
    sender: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    function: Any,
    destination: str,
    **extra: Any,
) -> None:
    recording = _recording.get()
    # Closed: a copy of the request's context (a job it scheduled, running later).
    if recording is not None and recording.open:
        recording.jobs.append(describe(function, args, kwargs, destination))


def describe(
    function: Any, args: tuple[Any, ...], kwargs: dict[str, Any], destination: str
) -> dict[str, Any]:
    """What the panel shows of one job, as JSON the toolbar can store."""
    options = [
        option
        for option in ("on_commit", "on_success", "unique")
        if getattr(function, option, False)
    ]
    if getattr(function, "using", None) is not None:
        options.append(f"using={function.using!r}")
    backend = sys.modules.get("raincheck.tasks.backend")
    if backend is not None and isinstance(function, backend.TaskJob):
        # A RaincheckBackend task: its job's arguments are (TaskResult, backend class).
        result = args[0]
        args, kwargs = tuple(result.args), result.kwargs
        options.append(f"task on backend {result.backend!r}")
    return {
        "name": str(getattr(function, "name", function)),
        "arguments": [short_repr(value) for value in args]
        + [f"{key}={short_repr(value)}" for key, value in kwargs.items()],
        "options": options,
        "destination": destination,
        "on_success": bool(getattr(function, "on_success", False)),
        "is_async": bool(getattr(function, "is_async", False)),
    }


def where(job: dict[str, Any], status: int, run_async: bool) -> str:
    """Where a job goes, as far as is known when the response is ready."""
    destination: str = job["destination"]
    if destination == "buffer":
        if job["on_success"] and status >= 400:
            return f"skipped: the response is a {status} (on_success)"
        if not run_async:
            return "after the response, in the request's thread (RAINCHECK_RUN_ASYNC = False)"
        if job["is_async"] and not greenlets.patched():
            return "after the response, on raincheck's event loop"
        return "after the response, on the pool"
    if destination.startswith("tasks:"):
        alias = destination.removeprefix("tasks:")
        return f"routed to Tasks backend {alias!r}, enqueued after the response"
    return {
        "duplicate": "dropped: an equal job is already scheduled (unique)",
        "pool": "handed to the pool at once (outside a request)",
        "captured": "captured by raincheck.testing.capture()",
        "immediate": "ran immediately (RAINCHECK_IMMEDIATE)",
    }.get(destination, destination)


def _start_listening() -> None:
    global _listening
    with _listening_lock:
        _listening += 1
        if _listening == 1:
            signals.job_scheduled.connect(_record, weak=False, dispatch_uid=__name__)
            # Closes the direct path: plain jobs skip schedule() and its signal.
            scheduling.refresh_direct_path()


def _stop_listening() -> None:
    global _listening
    with _listening_lock:
        _listening -= 1
        if _listening == 0:
            signals.job_scheduled.disconnect(dispatch_uid=__name__)
            scheduling.refresh_direct_path()


class RaincheckPanel(Panel):
    """The jobs this request scheduled, where each goes, and ``raincheck.stats()``."""

    title = "raincheck: jobs scheduled by this request"
    nav_title = "raincheck"
    template = "raincheck/debug_toolbar/panel.html"
    is_async = True

    def __init__(self, toolbar: DebugToolbar, get_response: Callable[..., Any]) -> None:
        super().__init__(toolbar, get_response)
        self._recording: Recording | None = None
        self._token: Token[Recording | None] | None = None

    @property
    def nav_subtitle(self) -> str:
        count = len(self.get_stats().get("jobs", []))  # type: ignore[no-untyped-call]
        return f"{count} job{'' if count == 1 else 's'} scheduled"

    def enable_instrumentation(self) -> None:
        if self._recording is not None:
            return  # called again: the toolbar asks for idempotence
        self._recording = Recording()
        self._token = _recording.set(self._recording)
        _start_listening()

    def disable_instrumentation(self) -> None:
        recording, token = self._recording, self._token
        if recording is None or not recording.open:
            return
        recording.open = False
        _stop_listening()
        if token is not None:
            # ValueError: not the context that set it; closing it is enough.
            with contextlib.suppress(ValueError):
                _recording.reset(token)

    def generate_stats(self, request: HttpRequest, response: HttpResponse) -> None:
        jobs = self._recording.jobs if self._recording is not None else []
        try:
            run_async = conf.get().run_async
        except Exception:
            run_async = True  # invalid settings: raincheck's checks say so
        for job in jobs:
            job["where"] = where(job, response.status_code, run_async)
        self.record_stats({"jobs": jobs, "stats": asdict(process.stats())})  # type: ignore[no-untyped-call]
