"""Per-request buffers: a request's jobs wait here until that request has finished.

The buffer lives in a ``ContextVar``, which each thread, greenlet and asyncio
task sees separately, so one request's end can only ever hand off its own jobs.

Under ASGI the variable is not always enough. Django 5.0-6.0 send
``request_started`` to sync receivers inside ``asyncio.gather``, i.e. in a copy
of the request's context, so a variable set there is lost (Django ticket
#36714). Every ASGI request does run inside its own asgiref
``ThreadSensitiveContext``, which all its copies share; the buffer is also
registered under that object, and found through it when the variable is empty.
If the request then ends without ``request_finished`` (a client that went away,
on Django < 6.1), the buffer is handed off once that object is collected, rather
than lost with it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import weakref
from collections import deque
from contextvars import ContextVar
from typing import Any, Final

from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.core.signals import got_request_exception, request_finished, request_started

from raincheck.admission import wait_for_room
from raincheck.handoff import hand_off
from raincheck.jobs import Job
from raincheck.stopsignals import look_again_from_the_loop

logger = logging.getLogger("raincheck")


class Buffer(list[Job]):
    """One request's jobs, plus what ``on_success`` and ``unique`` need to know."""

    __slots__ = ("closed", "failed", "seen", "status")

    def __init__(self) -> None:
        super().__init__()
        self.closed = False
        self.failed = False
        self.status: int | None = None
        self.seen: set[object] | None = None

    def succeeded(self) -> bool:
        return not self.failed and (self.status is None or self.status < 400)

    def add_once(self, job: Job, key: object) -> None:
        """Append ``job`` unless a job with the same ``key`` is already here."""
        seen = self.seen
        if seen is None:
            seen = self.seen = set()
        if key not in seen:
            seen.add(key)
            self.append(job)


current_buffer: Final[ContextVar[Buffer | None]] = ContextVar(
    "raincheck_request_buffer", default=None
)

# asgiref's per-request context under Django's ASGI handler (None under WSGI).
_asgi_request: Final = SyncToAsync.thread_sensitive_context
_by_asgi_request: weakref.WeakKeyDictionary[ThreadSensitiveContext, Buffer] = (
    weakref.WeakKeyDictionary()
)


# Requests that opened a buffer and have not ended yet, with their threads.
_open: dict[int, tuple[Buffer, threading.Thread]] = {}
# Re-entrant: _orphaned() runs from the garbage collector, which may run in a
# thread that already holds it.
_in_flight_changed = threading.Condition(threading.RLock())

# Buffers of ASGI requests collected without request_finished. A finalizer only
# queues them: it may run inside any allocation, even one made under the pool's
# lock, so handing off from there could deadlock.
_orphans: deque[Buffer] = deque()


def find_buffer() -> Buffer | None:
    """The current ASGI request's buffer, when the context variable lost it."""
    request = _asgi_request.get(None)
    return None if request is None else _by_asgi_request.get(request)


def request_buffer() -> Buffer | None:
    """The buffer of the request this code runs in, or None outside a request.

    A job runs in a copy of its request's context, where the variable still
    holds that request's buffer, closed by then: a job scheduled from a job is
    outside any request.
    """
    buffer = current_buffer.get()
    if buffer is None:
        buffer = find_buffer()
    return None if buffer is None or buffer.closed else buffer


def open_buffer(**kwargs: Any) -> None:
    stale = current_buffer.get()
    if stale and not stale.closed:
        # A request on this thread ended without request_finished (a server that
        # never closed the response). It has answered, so its jobs may run now.
        logger.warning(
            "raincheck: handing off %d job(s) of a request that never sent request_finished",
            len(stale),
        )
        close_buffer()
    hand_off_orphans()
    buffer = Buffer()
    with _in_flight_changed:
        _open[id(buffer)] = (buffer, threading.current_thread())
    current_buffer.set(buffer)
    request = _asgi_request.get(None)
    if request is not None:
        _by_asgi_request[request] = buffer
        weakref.finalize(request, _orphaned, buffer)
        look_again_from_the_loop()  # for the server's stop signals, once
        wait_for_room()  # block, under ASGI (raincheck.admission)


def close_buffer(**kwargs: Any) -> None:
    buffer = current_buffer.get()
    if buffer is None:
        buffer = find_buffer()
        if buffer is None:
            return
    else:
        current_buffer.set(None)
    request = _asgi_request.get(None)
    if request is not None:
        _by_asgi_request.pop(request, None)
    if _leave(buffer, handing_off=True):
        try:
            _release(buffer)
        finally:
            _handed_off(buffer)


def _leave(buffer: Buffer, *, handing_off: bool = False) -> bool:
    """Count the buffer's request as over; False if it already was.

    ``handing_off``: the caller hands the jobs off next and then calls
    ``_handed_off``; until then an exit drain keeps waiting for the request.
    """
    with _in_flight_changed:
        if buffer.closed:
            return False
        buffer.closed = True
        if not handing_off:
            _open.pop(id(buffer), None)
            _in_flight_changed.notify_all()
    return True


def _handed_off(buffer: Buffer) -> None:
    with _in_flight_changed:
        _open.pop(id(buffer), None)
        _in_flight_changed.notify_all()


def _release(buffer: Buffer) -> None:
    """Hand off the jobs of a request that has ended (only some, if it failed)."""
    if not buffer:
        return
    try:
        _hand_off_buffer(buffer)
    finally:
        # Each job's context holds its request's buffer: a buffer still holding
        # its jobs would be a reference cycle, freed only by the garbage
        # collector, after surviving into its oldest generation (full
        # collections: the p99 of a busy server).
        buffer.clear()


def _hand_off_buffer(buffer: Buffer) -> None:
    if buffer.succeeded():
        hand_off(buffer)
        return
    jobs = [job for job in buffer if not job[0].on_success]
    if len(jobs) < len(buffer):
        logger.info(
            "raincheck: skipping %d on_success job(s) of a failed request",
            len(buffer) - len(jobs),
        )
    if jobs:
        hand_off(jobs)


def note_failure(**kwargs: Any) -> None:
    buffer = current_buffer.get()
    if buffer is not None:
        buffer.failed = True


def note_status(status: int) -> None:
    buffer = current_buffer.get()
    if buffer is not None:
        buffer.status = status


def _orphaned(buffer: Buffer) -> None:
    if _leave(buffer):
        buffer.failed = True  # its response never completed: skip on_success jobs
        _orphans.append(buffer)


def hand_off_orphans() -> None:
    while _orphans:
        buffer = _orphans.popleft()
        if buffer:  # one that scheduled nothing is no news
            logger.warning(
                "raincheck: handing off %d job(s) of an ASGI request that ended without "
                "request_finished (the client went away)",
                len(buffer),
            )
        _release(buffer)


def requests_in_flight() -> bool:
    """Whether any request has jobs it has not handed off yet (or may still schedule)."""
    return bool(_open or _orphans or _by_asgi_request)


def wait_for_requests(deadline: float) -> None:
    """Before the exit drain: let requests still running hand off their jobs.

    Called by the exit drain (``raincheck.shutdown``): a server
    whose request threads are daemon threads (waitress, runserver) may stop
    while a request is between its response and request_finished. Never waits
    for the request this thread is itself serving.
    """
    hand_off_orphans()
    me = threading.current_thread()

    def running() -> int:
        # Requests being served by other live threads; one whose thread died
        # without request_finished will never finish.
        return sum(1 for _, thread in _open.values() if thread is not me and thread.is_alive())

    with _in_flight_changed:
        while pending := running():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                logger.warning(
                    "raincheck: %d request(s) still running at shutdown; "
                    "jobs they have not handed off yet will not run",
                    pending,
                )
                return
            _in_flight_changed.wait(min(remaining, threading.TIMEOUT_MAX))


def _empty_in_child() -> None:
    # A process forked in the middle of a request must not run its parent's jobs.
    global _in_flight_changed
    current_buffer.set(None)
    _open.clear()
    _in_flight_changed = threading.Condition(threading.RLock())


def hand_off_abandoned() -> None:
    """At exit: hand off the jobs of ASGI requests that will never end properly.

    ``weakref.finalize`` runs the finalizers of still-live contexts from its
    own exit hook, registered when the process created its first finalizer:
    under some servers (daphne on Django 5.2) before raincheck's, so it would
    run after the drain and queue those buffers for nobody. Adopt them now.
    """
    hand_off_orphans()
    for buffer in list(_by_asgi_request.values()):
        _orphaned(buffer)
    hand_off_orphans()


request_started.connect(open_buffer, dispatch_uid="raincheck.open_buffer")
request_finished.connect(close_buffer, dispatch_uid="raincheck.close_buffer")
got_request_exception.connect(note_failure, dispatch_uid="raincheck.note_failure")
os.register_at_fork(after_in_child=_empty_in_child)
