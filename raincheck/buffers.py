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

from django.core.signals import request_finished, request_started

from raincheck.jobs import Job
from raincheck.scheduling import hand_off

logger = logging.getLogger("raincheck")

current_buffer: Final[ContextVar[list[Job] | None]] = ContextVar(
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
        hand_off(stale)
    current_buffer.set([])


def close_buffer(**kwargs: Any) -> None:
    buffer = current_buffer.get()
    if buffer is None:
        return
    current_buffer.set(None)
    if buffer:
        hand_off(buffer)


def _empty_in_child() -> None:
    # A process forked in the middle of a request must not run its parent's jobs.
    current_buffer.set(None)


request_started.connect(open_buffer, dispatch_uid="raincheck.open_buffer")
request_finished.connect(close_buffer, dispatch_uid="raincheck.close_buffer")
os.register_at_fork(after_in_child=_empty_in_child)
