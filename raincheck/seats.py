"""Seats: how many threads raincheck runs for jobs at once, the pool's and async jobs' own.

``RAINCHECK_MAX_WORKERS`` bounds them together. A pool thread takes a seat as it
starts and gives it back as it ends; so does each thread that runs async jobs'
``sync_to_async`` calls (the async ORM's; ``raincheck.callthreads``). Without
the shared bound, a hundred async jobs each making one ORM call would start a
hundred threads besides the pool's.

The pool never waits for a seat: with none free it starts no thread (its first
thread starts in any case, so sync jobs always have one), and asks for an idle
call thread to go (``on_full``). An async job's first sync call does wait, and
meanwhile an idle pool thread leaves at once (``on_wanted``) rather than after
its keep-alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable


def _nothing() -> None:
    pass


class Seats:
    """A count of seats, and what the two sides that share them ask of each other."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0
        self._lock = threading.Lock()
        # Set by the call threads: whether an async job waits; a seat came free.
        self.wanted: Callable[[], bool] = lambda: False
        self.on_freed: Callable[[], None] = _nothing
        # Set by the call threads: let an idle one go (the pool found no seat).
        self.on_full: Callable[[], None] = _nothing
        # Set by the pool: let an idle thread go (an async job waits); a seat was
        # kept for it (start a thread if jobs wait).
        self.on_wanted: Callable[[], None] = _nothing
        self.on_freed_for_pool: Callable[[], None] = _nothing
        # The pool wanted a thread and found no seat (cleared as one is kept for it).
        self.pool_short = False

    def take(self, *, force: bool = False) -> bool:
        """A seat if one is free (or ``force``: past the limit); never waits."""
        with self._lock:
            if force or self.taken < self.limit:
                self.taken += 1
                return True
            return False

    def give_back(self, *, quietly: bool = False) -> None:
        """A seat is free again; ``quietly``: without offering it (its taker failed)."""
        with self._lock:
            self.taken -= 1
        if not quietly:
            self.on_freed()

    def set_limit(self, limit: int) -> None:
        """``RAINCHECK_MAX_WORKERS`` changed: a higher limit seats waiters at once."""
        self.limit = limit
        self.on_freed()
