"""Seats: how many threads raincheck runs for jobs at once, the pool's and async jobs' own.

``RAINCHECK_MAX_WORKERS`` bounds them together. ``raincheck-loop``, where async
jobs await, holds one seat from its start to its end (unless the limit is one:
the others then still get that one). With none free when the first async job
comes, the loop waits for one: an idle thread leaves for it at once, else the
next pool thread to finish a job (not the pool's last staying), which becomes the
loop's thread. A pool thread takes a seat as it
starts and gives it back as it ends; so does each thread that runs async jobs'
``sync_to_async`` calls (the async ORM's; ``raincheck.callthreads``). A thread
that leaves on its own passes its seat on (``leave``): to the waiting loop or
job, which it then serves itself, seat and all; a thread started for a seat
while its giver still ran would be one past the limit.
Without the shared bound, a hundred async jobs each making one ORM call would start a
hundred threads besides the pool's.

The pool never waits for a seat: with none free it asks for an idle call
thread to go (``on_full``), and else starts no thread. Its first thread
finds one: while the pool has no thread, call threads leave it a seat. (With
one seat for both they cannot: a job that finds neither a pool thread nor a
seat runs in the thread that hands it off, and the next call thread given back
leaves rather than passing to a waiting job.)
An async job's first sync call does wait, and meanwhile an idle pool thread
(not its last) leaves at once (``on_wanted``) rather than after its keep-alive.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

# Seconds a thread about to start waits for one that gave a seat back to end:
# a moment (its last steps), bounded in case it is held up.
ENDING_WAIT = 0.1


def _nothing() -> None:
    pass


class Seats:
    """A count of seats, and what the two sides that share them ask of each other."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.taken = 0  # by pool and call threads; raincheck-loop's is apart
        self.pool_taken = 0  # of which by the pool's threads
        self._loops = 0  # raincheck-loop threads running (a drained one may still end)
        self._lock = threading.Lock()
        self._ending: list[threading.Thread] = []  # gave a seat back, not yet gone
        # Set by the call threads: whether an async job waits; a seat came free.
        self.wanted: Callable[[], bool] = lambda: False
        self.on_freed: Callable[[], None] = _nothing
        # Set by the call threads: let an idle one go (the pool found no seat).
        self.on_full: Callable[[], None] = _nothing
        # Set by the pool: let an idle thread go (an async job waits); a seat was
        # kept for it (start a thread if jobs wait).
        self.on_wanted: Callable[[], None] = _nothing
        self.on_freed_for_pool: Callable[[], None] = _nothing
        # Set by the call threads: a thread ending with its seat (the pool's: True)
        # serves a waiting job instead (True: it has, and left in turn), else
        # gives the seat back.
        self.serve_instead: Callable[[bool], bool] = self._serve_none
        # The pool wanted a thread and found no seat (cleared as one is kept for it).
        self.pool_short = False
        # raincheck-loop waits for a seat; set by the loop: one was taken for it.
        self.loop_waits = False
        # (here: the calling thread, a pool thread ending, runs the loop itself.)
        self.on_loop_seat: Callable[[bool], None] = lambda here: None

    def take(self, *, pool: bool = False) -> bool:
        """A seat if one is free; never waits.

        While the pool has no thread, call threads leave it one seat (unless
        there is only one), so that its first thread finds one.
        """
        with self._lock:
            if not self._fits(self.taken, self.pool_taken, pool=pool):
                return False
            self.taken += 1
            self.pool_taken += pool
        if self._ending:
            self._let_ending_end()
        return True

    def _fits(self, taken: int, pool_taken: int, *, pool: bool) -> bool:
        # Lock held: whether one more seat fits beside ``taken`` (``pool``: for the pool).
        room = self.room()
        kept = 0 if pool or pool_taken or room == 1 else 1
        return taken < room - kept

    def pass_on(self, *, pool: bool) -> bool:
        """A thread ending (the pool's: ``pool``) keeps its seat as a call thread,
        if one could take it once given back; False: it has not."""
        with self._lock:
            pool_taken = self.pool_taken - pool
            if not self._fits(self.taken - 1, pool_taken, pool=False):
                return False
            self.pool_taken = pool_taken
        return True

    def _serve_none(self, pool: bool) -> bool:
        self.give_back(pool=pool, quietly=True)
        return False

    def ending(self) -> None:
        """The calling thread has given its seat back and now ends: the thread
        that takes a seat next waits for it to be gone (its last steps), so
        that the two never run at once, one past the limit."""
        me = threading.current_thread()
        with self._lock:
            self._ending = [thread for thread in self._ending if thread.is_alive()]
            self._ending.append(me)

    def _let_ending_end(self) -> None:
        with self._lock:
            ending, self._ending = self._ending, []
        me = threading.current_thread()
        for thread in ending:
            if thread is not me:
                thread.join(ENDING_WAIT)

    def give_back(self, *, pool: bool = False, quietly: bool = False) -> None:
        """A seat is free again; ``quietly``: without offering it (its taker failed)."""
        with self._lock:
            self.taken -= 1
            self.pool_taken -= pool
        if not quietly:
            self.offer()

    def offer(self) -> None:
        """Seats may be free: raincheck-loop first, if it waits, then waiting jobs."""
        if self.loop_waits and self.take_for_loop():
            self.on_loop_seat(False)
        self.on_freed()

    def leave(self, *, pool: bool = False) -> None:
        """The calling thread, the pool's or a call thread, ends with its seat: if
        raincheck-loop waits for one, the thread runs the loop instead; if a job
        waits for a call thread and may have it, it serves that job; else it gives
        the seat back. The seat passes on, never free meanwhile: a thread started
        for it would run beside this one, past the limit, until this one ended."""
        if self.loop_waits and self._pass_to_loop(pool):
            self.on_loop_seat(True)
        elif not self.serve_instead(pool):
            self.offer()
        self.ending()

    def _pass_to_loop(self, pool: bool) -> bool:
        with self._lock:
            taken = self.taken - 1
            if not (self.loop_waits and self._loop_fits(taken)):
                return False
            self.taken, self.pool_taken = taken, self.pool_taken - pool
            self._loops += 1
            self.loop_waits = False
        return True

    def pool_thread_wanted(self, staying: int) -> bool:
        """Whether an idle pool thread should leave now for a job waiting for a call
        thread: not the pool's last one (of the ``staying``, those not already
        leaving), whose seat would stay the pool's."""
        wanted = self.wanted() or self.loop_waits
        return wanted and (staying > 1 or self.room() == 1)

    def room(self) -> int:
        """The seats of pool and call threads: the limit less raincheck-loop's."""
        return max(1, self.limit - self._loops)

    def over(self) -> bool:
        """More seats taken than there are (the limit was lowered), or the loop waits
        for one."""
        return self.taken > self.room() or self.loop_waits

    def pool_over(self, staying: int) -> bool:
        """Whether a pool thread should leave to end an excess: not the pool's last
        of the ``staying``. Threads already leaving still hold their seats: were
        they counted, two leaving at once would leave the pool no thread for a job
        queued meanwhile, and no seat for another."""
        return staying > 1 and self.over()

    def take_for_loop(self) -> bool:
        """A seat for raincheck-loop, if pool and call threads fit in the rest;
        else it waits for one (``loop_waits``), which ``offer`` takes for it."""
        with self._lock:
            if not self._loop_fits(self.taken):
                self.loop_waits = True
                return False
            self._loops += 1
            self.loop_waits = False
        if self._ending:
            self._let_ending_end()
        return True

    def _loop_fits(self, taken: int) -> bool:
        # Lock held: whether one more raincheck-loop leaves room for ``taken``.
        return taken <= max(1, self.limit - self._loops - 1)

    def loop_ended(self) -> None:
        """raincheck-loop's thread has ended (or could not start): its seat is free."""
        with self._lock:
            self._loops -= 1
        self.offer()

    def set_limit(self, limit: int) -> None:
        """``RAINCHECK_MAX_WORKERS`` changed: a higher limit seats waiters at once."""
        self.limit = limit
        self.offer()
