"""The threads that run async jobs' sync calls: one job's at a time, kept for the next job.

Django's ASGI handler gives each request a thread for its ``sync_to_async``
calls (the async ORM's), so that they share database connections; an async
job on raincheck's event loop gets the same (``raincheck.jobcalls``). Here such
a thread is leased to one job, from its first sync call to its end (after it
has closed the job's connections), then to the next job: no thread is started
and joined per job, and a thread still exists for jobs the exit drain runs,
when Python (3.12+) starts no new thread. Each thread holds a seat
(``raincheck.seats``), so that they and the pool's threads stay within
``RAINCHECK_MAX_WORKERS``; a job that finds no thread and no seat waits (its
calls do, the event loop does not), first come first served. An idle thread
leaves after ``KEEP_ALIVE``, or at once when the pool finds no seat; and when
the pool finds none while these threads outnumber its own, the next one given
back leaves too, its seat kept for the pool.
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from queue import Empty, SimpleQueue
from typing import Any, Final

from raincheck.seats import Seats

# Seconds an idle thread waits for its next job before it leaves.
KEEP_ALIVE: Final = 5.0

_numbers: Final = itertools.count(1)
Call = tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]
Granted = Callable[["CallThread | None"], None]


class CallThread:
    """A daemon thread that runs the calls put to it, in order."""

    def __init__(self, owner: CallThreads, *, here: bool = False) -> None:
        """``here``: this thread becomes it (``serve_here()``), rather than a new one."""
        self._owner = owner
        self._calls: SimpleQueue[Call | None] = SimpleQueue()
        name = f"raincheck-sync-{next(_numbers)}"
        self._thread = (
            threading.current_thread()
            if here
            else threading.Thread(target=self._serve, name=name, daemon=True)
        )
        self._name = name
        self._gives_seat = False  # as it ends (Seats.leave): it left on its own

    def start(self) -> None:
        self._thread.start()

    def serve_here(self) -> None:
        """Serve in this thread (made ``here``) until it leaves."""
        self._thread.name = self._name
        self._serve()

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        self.put((future, fn, args))
        return future

    def put(self, call: Call) -> None:
        self._calls.put(call)

    def is_current(self) -> bool:
        return threading.current_thread() is self._thread

    def stop(self, *, wait: bool = False, gives_seat: bool = False) -> None:
        """Leave after the calls already put; ``wait``: until gone (an idle thread,
        at once); ``gives_seat``: it gives its seat back itself as it ends."""
        self._gives_seat = gives_seat
        self._calls.put(None)
        # Given back by its own last call (a task a job left running: its call's
        # future ends there), it cannot wait for itself: it leaves right after.
        if wait and not self.is_current():
            self._thread.join()

    def _serve(self) -> None:
        while True:
            try:
                call = self._calls.get(timeout=KEEP_ALIVE)
            except Empty:
                if self._owner.retire(self):
                    self._gives_seat = True
                    break
                continue
            if call is None:
                break
            future, fn, args = call
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = fn(*args)
            except BaseException as exc:  # the job's to handle: it awaits the future
                future.set_exception(exc)
            else:
                future.set_result(result)
        # A seat it gives back itself, it gives from here, its last steps: to what
        # waits for one, which this thread then serves, rather than starting a
        # thread that would run beside this one until it had ended.
        if self._gives_seat:
            self._owner._seats.leave()
        else:  # its stopper gives it back once it is gone
            self._owner._seats.ending()


class CallThreads:
    """The idle call threads, and the jobs waiting for one."""

    def __init__(self, seats: Seats) -> None:
        self._seats = seats
        self._lock = threading.Lock()
        self._idle: list[CallThread] = []
        self._count = 0  # threads started and not left (idle or leased)
        self._waiting: deque[Granted] = deque()
        seats.wanted = lambda: bool(self._waiting)
        seats.on_freed = self._seat_freed
        seats.on_full = self._let_one_go
        seats.serve_instead = self._take_over

    def lease(self, granted: Granted) -> None:
        """Give a thread to ``granted``, now or once one is free (None: none could start)."""
        thread: CallThread | None = None
        with self._lock:
            waits = not self._idle and (bool(self._waiting) or not self._seats.take())
            if waits:
                self._waiting.append(granted)
            else:
                thread = self._idle.pop() if self._idle else self._start()
        if waits:
            self._seats.on_wanted()
        else:
            granted(thread)

    def give_back(self, thread: CallThread) -> None:
        """Its job has ended: the next waiting job gets it, or it idles. It leaves
        instead when more seats are taken than there are (the limit was
        lowered), or raincheck-loop waits for one,
        or when the pool found no seat and has fewer threads than these: its
        seat then goes to the pool (else waiting async jobs would keep every
        seat)."""
        seats = self._seats
        # Given back by its own last call (a task a job left running), it cannot
        # wait for itself to end: it leaves only if it must, and then gives its
        # seat back as it ends; the pool gets the next one given back.
        mine = thread.is_current()
        with self._lock:
            over = seats.over()
            to_pool = not (over or mine) and seats.pool_short and seats.pool_taken < self._count
            if over or to_pool:
                self._count -= 1
                seats.pool_short = seats.pool_short and not to_pool
            elif self._waiting:
                granted = self._waiting.popleft()
            else:
                self._idle.append(thread)
                return
        if not (over or to_pool):
            granted(thread)
            return
        if mine:
            thread.stop(gives_seat=True)
            return
        thread.stop(wait=True)  # gone before its seat is taken again
        seats.give_back(quietly=True)
        if to_pool:
            seats.on_freed_for_pool()
        # Whatever seat is still free goes to the loop or a waiting job: the pool
        # may have had no job left to start a thread for by now.
        seats.offer()

    def cancel(self, granted: Granted) -> bool:
        """Stop waiting; False if ``granted`` has been given a thread already."""
        with self._lock:
            try:
                self._waiting.remove(granted)
            except ValueError:
                return False
            return True

    def retire(self, thread: CallThread) -> bool:
        """An idle thread's keep-alive ran out: whether it may leave (it gives its
        seat back as it ends)."""
        with self._lock:
            if thread not in self._idle:
                return False  # leased meanwhile: a call is on its way
            self._idle.remove(thread)
            self._count -= 1
        return True

    def stop_idle(self) -> None:
        """The idle threads leave (a drain has stopped the pool and the loop); each
        seat is free once its thread is gone, not before (jobs may wait for one)."""
        with self._lock:
            idle, self._idle = self._idle, []
            self._count -= len(idle)
        for thread in idle:
            thread.stop(wait=True)
            self._seats.give_back()

    def _take_over(self, pool: bool) -> bool:
        """A thread, the pool's (``pool``) or a call thread, is leaving with its seat:
        if a job waits for a thread and may have that seat, this one serves it until
        it leaves in turn; else the seat is given back. Either under this lock, so
        that the seat is never free for another thread to start while this one
        ends, and a job that comes to wait meanwhile finds it free."""
        with self._lock:
            if not (self._waiting and self._seats.pass_on(pool=pool)):
                self._seats.give_back(pool=pool, quietly=True)
                return False
            granted = self._waiting.popleft()
            thread = CallThread(self, here=True)
            self._count += 1
        granted(thread)
        thread.serve_here()
        return True

    def _let_one_go(self) -> None:
        with self._lock:
            thread = self._idle.pop() if self._idle else None
            self._count -= thread is not None
        if thread is not None:
            thread.stop(wait=True)  # gone before the pool's thread takes its seat
            self._seats.give_back()

    def _seat_freed(self) -> None:
        while True:
            with self._lock:
                if not self._waiting or not self._seats.take():
                    return
                granted = self._waiting.popleft()
                thread = self._start()
            granted(thread)

    def _start(self) -> CallThread | None:
        # Lock held, a seat taken. None, the seat given back: no thread to be had
        # (at interpreter exit Python starts none).
        thread = CallThread(self)
        try:
            thread.start()
        except RuntimeError:
            self._seats.give_back(quietly=True)
            return None
        self._count += 1
        return thread
