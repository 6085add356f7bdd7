"""Per-request buffers: a request's jobs wait here until that request has finished.

The buffer lives in a ``ContextVar``, which each thread, greenlet and asyncio
task sees separately, so one request's end can only ever hand off its own jobs.
Under ASGI, Django runs ``request_started`` and ``request_finished`` through
asgiref, which copies context variables back to the request's task, so the
buffer set at the start is the one found at the end.
"""

from __future__ import annotations

import logging
import os
from contextvars import ContextVar
from typing import Any, Final

from django.core.signals import got_request_exception, request_finished, request_started

from raincheck.jobs import Job
from raincheck.scheduling import hand_off

logger = logging.getLogger("raincheck")


class Buffer(list[Job]):
    """One request's jobs, plus what ``on_success`` and ``unique`` need to know."""

    __slots__ = ("failed", "seen", "status")

    def __init__(self) -> None:
        super().__init__()
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


def open_buffer(**kwargs: Any) -> None:
    stale = current_buffer.get()
    if stale:
        # A request on this thread ended without request_finished (a server that
        # never closed the response). It has answered, so its jobs may run now.
        logger.warning(
            "raincheck: handing off %d job(s) of a request that never sent request_finished",
            len(stale),
        )
        close_buffer()
    current_buffer.set(Buffer())


def close_buffer(**kwargs: Any) -> None:
    buffer = current_buffer.get()
    if buffer is None:
        return
    current_buffer.set(None)
    if not buffer:
        return
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


def _empty_in_child() -> None:
    # A process forked in the middle of a request must not run its parent's jobs.
    current_buffer.set(None)


request_started.connect(open_buffer, dispatch_uid="raincheck.open_buffer")
request_finished.connect(close_buffer, dispatch_uid="raincheck.close_buffer")
got_request_exception.connect(note_failure, dispatch_uid="raincheck.note_failure")
os.register_at_fork(after_in_child=_empty_in_child)
