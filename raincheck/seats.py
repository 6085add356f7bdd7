"""Seats: how many threads raincheck runs for jobs at once, the pool's and async jobs' own.

``RAINCHECK_MAX_WORKERS`` bounds them together. A pool thread takes a seat as it
starts and gives it back as it ends; an async job on raincheck's event loop
takes one for the thread its ``sync_to_async`` calls run on (the async ORM's),
made on its first such call, and gives it back when the job ends
(``raincheck.awaiting``). Without the shared bound, a hundred async jobs each
making one ORM call would start a hundred threads besides the pool's.

The pool never waits for a seat: with none free it starts no thread (its first
thread starts in any case, so sync jobs always have one). An async job's first
call does wait, without blocking the loop, and meanwhile the pool is asked to
let an idle thread go (``on_wait``).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable


class Seats:
    """A count of seats, and the callbacks waiting for one, first come first served."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0
        self._lock = threading.Lock()
        self._waiting: deque[Callable[[], None]] = deque()
        # Called, outside the lock, when someone starts to wait: the pool sets it.
        self.on_wait: Callable[[], None] = lambda: None

    def take(self, *, force: bool = False) -> bool:
        """A seat if one is free (or ``force``: past the limit); never waits."""
        with self._lock:
            if force or (self.taken < self.limit and not self._waiting):
                self.taken += 1
                return True
            return False

    def take_or_wait(self, seated: Callable[[], None]) -> bool:
        """A seat now (True), or ``seated()`` is called once one is given back."""
        with self._lock:
            if self.taken < self.limit and not self._waiting:
                self.taken += 1
                return True
            self._waiting.append(seated)
        self.on_wait()
        return False

    def wanted(self) -> bool:
        """Whether someone waits for a seat (an idle pool thread then leaves)."""
        return bool(self._waiting)

    def cancel(self, seated: Callable[[], None]) -> bool:
        """Stop waiting; False if ``seated`` has been given a seat already."""
        with self._lock:
            try:
                self._waiting.remove(seated)
            except ValueError:
                return False
            return True

    def give_back(self) -> None:
        """A seat is free: the first waiter gets it, called on this thread."""
        with self._lock:
            self.taken -= 1
        self._serve()

    def set_limit(self, limit: int) -> None:
        """``RAINCHECK_MAX_WORKERS`` changed: a higher limit seats waiters at once."""
        self.limit = limit
        self._serve()

    def _serve(self) -> None:
        while True:
            with self._lock:
                if not self._waiting or self.taken >= self.limit:
                    return
                self.taken += 1
                seated = self._waiting.popleft()
            seated()
