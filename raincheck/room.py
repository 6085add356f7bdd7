"""Threads waiting for room in the pool's full queue (``block``), served in arrival order.

With one shared condition, a thread that has just arrived takes the room a
worker frees before the threads already waiting can, and whichever waiter
the wake-up picks goes next: under a saturated server a few requests then
wait far longer than the rest (their server's p99). Here each waiter has its
own turn, only the first in line is woken, and only once the room fits its
next step; newcomers join the end of the line (docs/design.rst, "Backpressure").

Every method is called with the pool's lock held.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable
from typing import Final

from raincheck.backlog import MAX_BATCH
from raincheck.jobs import Job


class Waiter:
    """One thread in line: its own condition, and how many jobs it still has to queue."""

    __slots__ = ("need", "turn")

    def __init__(self, lock: threading.RLock, need: int) -> None:
        self.turn = threading.Condition(lock)
        self.need = need


# Seconds between two looks at the stop's deadline while waiting: a stop
# signal cannot notify a condition (its handler may not take a lock).
STOP_POLL: Final = 0.1


def never() -> float:
    return math.inf


class Line:
    """The waiters, first come first served. ``stop_by()`` is the time by which
    the process's stop must be over (infinity while it is not stopping): no one
    waits past it."""

    __slots__ = ("_stop_by", "_waiters")

    def __init__(self, stop_by: Callable[[], float] = never) -> None:
        self._waiters: deque[Waiter] = deque()
        self._stop_by = stop_by

    def __len__(self) -> int:
        return len(self._waiters)

    def join(self, lock: threading.RLock, need: int) -> Waiter:
        waiter = Waiter(lock, need)
        self._waiters.append(waiter)
        return waiter

    def first(self) -> Waiter | None:
        return self._waiters[0] if self._waiters else None

    def leave(self, waiter: Waiter) -> None:
        """``waiter`` is done (all queued, timed out, or the pool closed): the next one's turn."""
        was_first = self._waiters[0] is waiter
        self._waiters.remove(waiter)
        if was_first and self._waiters:
            self._waiters[0].turn.notify()

    def wait_for_room(
        self,
        lock: threading.RLock,
        jobs: list[Job],
        timeout: float,
        queue_some: Callable[[deque[Job]], list[Job] | None],
        closed: Callable[[], bool],
    ) -> list[Job]:
        """Wait in line, up to ``timeout`` and never past the stop's deadline, until
        ``queue_some`` has taken all of ``jobs`` (it takes what fits from the deque's
        left, each time this thread is first in line and woken). Returns the jobs
        that never found room, and those ``queue_some`` gave back (no worker could
        start)."""
        deadline = time.monotonic() + timeout
        pending = deque(jobs)
        me = self.join(lock, len(pending))
        woken = True
        try:
            while not closed():
                remaining = min(deadline, self._stop_by()) - time.monotonic()
                # A waiter woken only to look at the clock queues nothing until
                # its time is up: room is taken as room_made() wants it.
                if (woken or remaining <= 0) and self.first() is me:
                    stranded = queue_some(pending)
                    me.need = len(pending)
                    if stranded is not None:
                        return [*stranded, *pending]
                if not pending or remaining <= 0:
                    break
                woken = me.turn.wait(min(remaining, STOP_POLL))
        finally:
            self.leave(me)
        return list(pending)

    def room_made(self, room: int, max_queue: int) -> None:
        """``room`` jobs now fit in the queue: wake the first waiter if that is enough
        for its next step (all it has left, a batch's worth, or a whole queue's)."""
        if self._waiters:
            first = self._waiters[0]
            if room >= min(first.need, MAX_BATCH, max_queue):
                first.turn.notify()

    def wake_all(self) -> None:
        """The pool closed: every waiter stops waiting."""
        for waiter in self._waiters:
            waiter.turn.notify()
