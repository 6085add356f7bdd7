"""``block`` and ``caller_runs`` under ASGI: a request waits for room as it starts.

Under WSGI a request ends on one of the server's threads: when ``block``
makes it wait for room in a full queue, or ``caller_runs`` makes it run the
jobs that did not fit, the server has fewer threads for new requests, and
slows down with its jobs.
Under ASGI each request ends on a thread Django makes for it, after its client
has the response, and the server goes on to the next request meanwhile: threads
that wait or run jobs there only pile up, with the request rate. So while the
queue is full, an ASGI request waits here, in ``request_started``, before its
view runs and while its client still waits for it, at most
``RAINCHECK_BLOCK_TIMEOUT`` seconds: the requests in flight then bound the
threads, as a WSGI server's threads do (docs/design.rst, "Backpressure").
"""

from __future__ import annotations

import threading
import time
from typing import Final

from raincheck import conf, process
from raincheck.jobs import in_job

# Seconds between two looks at a full queue. Polled rather than notified: this
# runs only while the queue is full, and the pool's hot path stays as it is.
POLL: Final = 0.01

SLOWING: Final = ("block", "caller_runs")

# Requests waiting here now; notified when it changes (tests wait on it).
changed: Final = threading.Condition()
waiting = 0


def wait_for_room() -> None:
    """Return once neither the pool's queue nor the async jobs' is full, or after
    ``RAINCHECK_BLOCK_TIMEOUT`` seconds; at once under a policy that drops jobs."""
    global waiting
    settings = conf.get()
    # The policies that keep every job slow their callers down; under ASGI only
    # a request that has not started yet is still a caller to slow down.
    if settings.backpressure not in SLOWING or not settings.max_queue or in_job():
        return
    if not _full(settings.max_queue):
        return
    deadline = time.monotonic() + settings.block_timeout
    state = process.current()
    with changed:
        waiting += 1
        changed.notify_all()
    try:
        # Never past the stop's deadline: a request waiting here holds the exit.
        while (remaining := min(deadline, state.stop_deadline()) - time.monotonic()) > 0:
            time.sleep(min(POLL, remaining))
            if not _full(settings.max_queue):
                return
    finally:
        with changed:
            waiting -= 1
            changed.notify_all()


def _full(max_queue: int) -> bool:
    """Whether a queue is full enough that the requests already in flight need the rest."""
    state = process.current()
    if state.exiting:
        return False  # the drain decides what runs now
    pool, loop = state.pool, state.loop
    # At least one job: a queue of a few jobs is not full while empty.
    mark = max(1, max_queue - max(1, max_queue // 10))
    return (pool is not None and pool.load()[0] >= mark) or (
        loop is not None and loop.load()[0] >= mark
    )
