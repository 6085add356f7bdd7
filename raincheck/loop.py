"""raincheck's event loop for async jobs: one thread, many jobs awaiting at once, a bound.

An ``async def`` job spends most of its time awaiting (a webhook, an email
API). On a pool thread it would hold that thread while it waits; here, up to
``RAINCHECK_ASYNC_CONCURRENCY`` of them run at once as tasks of one event loop,
on one daemon thread named ``raincheck-loop`` started with the first async job.
The others wait in a queue, not as tasks: a job becomes a task, made in its
job's context, when a place is free. The drain waits for them within its
deadline, then drops those waiting, cancels those running, and names them all
(docs/design.rst, "Async jobs").
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque

from raincheck.jobcalls import LoopCalls
from raincheck.jobs import Job, run_async
from raincheck.seats import Seats
from raincheck.stats import Counters


class JobLoop:
    """The event loop thread, its tasks, and what the drain and ``stats()`` need of them."""

    def __init__(
        self, limit: int, counters: Counters, calls: LoopCalls, seats: Seats | None = None
    ) -> None:
        self.counters = counters
        self._limit = limit
        self._calls = calls  # where the jobs' sync calls go
        self._seats = seats  # the loop's thread holds one while it runs
        # Reentrant only so that a signal handler can tell that its thread holds it.
        self.lock = threading.RLock()
        self._idle = threading.Condition(self.lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None  # waiting for a seat
        # Written under the lock: by the loop's thread (tasks) and by put() (waiting).
        self._tasks: dict[asyncio.Task[bool | None], Job] = {}
        self._waiting: deque[Job] = deque()  # accepted, not started
        # A _fill() is on its way to the loop's thread: under load, one wake-up
        # starts many requests' jobs.
        self._woken = False
        self._closed = False
        # The drain's deadline has passed: nothing starts any more, and a job
        # cancelled now is the drain's doing, not its own failure.
        self._stopping = False

    def put(self, jobs: list[Job], *, max_queue: int) -> list[Job]:
        """Accept what fits under ``max_queue`` waiting jobs; return the rest (lock free)."""
        with self.lock:
            if self._closed:
                return jobs
            room = max_queue - len(self._waiting) if max_queue else len(jobs)
            accepted, rest = jobs[: max(room, 0)], jobs[max(room, 0) :]
            if not accepted:
                return rest
            starting = self._loop is None
            loop = self._loop or self._start()
            if loop is None:
                return jobs
            self._waiting.extend(accepted)
            # With every place taken, the next job to end starts these.
            wake = not self._woken and len(self._tasks) < self._limit
            self._woken |= wake
        if starting and self._seats is not None and self._seats.loop_waits:
            # Outside the lock (they take the pool's and the call threads'):
            # an idle thread, the pool's or a call thread, leaves for the loop.
            self._seats.on_wanted()
            self._seats.on_full()
        if wake:
            # Outside the lock: the wake-up writes to a socket, which lets the
            # loop's thread run, and its first step is to take the lock.
            loop.call_soon_threadsafe(self._fill)
        return rest

    def load(self) -> tuple[int, int]:
        """``(waiting, running)`` async jobs right now."""
        with self.lock:
            return len(self._waiting), len(self._tasks)

    def wait_idle(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            return self._wait_until_idle(deadline)

    def drain(self, timeout: float | None) -> list[Job]:
        """Stop accepting; wait up to ``timeout``; drop, cancel and return what is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            self._closed = True
            if self._wait_until_idle(deadline):
                self._stop()
                return []
            self._stopping = True
            never_started = list(self._waiting)
            self._waiting.clear()
            running = list(self._tasks.values())
            self.counters.add(dropped=len(never_started))
            if running and self._loop is not None:
                # All in one step of the loop. Cancelled jobs count themselves;
                # give them a moment, unless a job has blocked the loop's thread,
                # which then never gets to them.
                self._loop.call_soon_threadsafe(self._cancel_all)
                self._wait_until_idle(time.monotonic() + 1.0)
            self._stop()
        return [*running, *never_started]

    def _start(self) -> asyncio.AbstractEventLoop | None:
        """The loop, its thread started now or once a seat is free (lock held)."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._serve, args=(loop,), name="raincheck-loop", daemon=True
        )
        seats = self._seats
        if seats is not None and not seats.take_for_loop():
            # Jobs queue on the loop until then; call_soon_threadsafe works
            # on a loop that does not run yet.
            self._loop, self._thread = loop, thread
            seats.on_loop_seat = self._seat_came
            return loop
        if not self._start_thread(thread):
            loop.close()
            return None
        self._loop = loop
        return loop

    def _seat_came(self, here: bool) -> None:
        """A seat was taken for the waiting loop: its thread starts (``here``: the
        calling thread serves as that thread, until the loop stops), unless the
        drain has closed it meanwhile (its jobs were counted and named)."""
        with self.lock:
            thread, self._thread = self._thread, None
            serve = thread is not None and not self._closed
            if serve and not here:
                assert thread is not None
                self._start_thread(thread)
        if not serve:
            if self._seats is not None:
                self._seats.loop_ended()
        elif here:
            assert self._loop is not None
            threading.current_thread().name = "raincheck-loop"
            self._serve(self._loop)

    def _start_thread(self, thread: threading.Thread) -> bool:
        # Lock held, a seat taken. False, the seat given back: no thread to be
        # had (at interpreter exit Python starts none); jobs accepted by then
        # wait for the drain, which counts and names them.
        try:
            thread.start()
        except RuntimeError:
            if self._seats is not None:
                self._seats.loop_ended()
            return False
        return True

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()
            if self._seats is not None:
                self._seats.loop_ended()
                self._seats.ending()

    def _stop(self) -> None:
        # Lock held. A thread still waiting for its seat waits no more.
        if self._thread is not None and self._seats is not None:
            self._thread, self._seats.loop_waits = None, False
            if self._loop is not None:
                self._loop.close()  # it never ran
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _fill(self) -> None:
        """Start waiting jobs while places are free (on the loop's thread)."""
        loop = self._loop
        assert loop is not None
        with self.lock:
            self._woken = False
            waiting, tasks = self._waiting, self._tasks
            while waiting and len(tasks) < self._limit and not self._stopping:
                job = waiting.popleft()
                # Made in the job's context: the task runs in a copy of it.
                coroutine = run_async(job, self._stopped, self._calls)
                task = job[3].run(loop.create_task, coroutine)
                tasks[task] = job
                # Counted and removed even if it is cancelled before it starts.
                task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[bool | None]) -> None:
        # On the loop's thread. None: the drain cancelled it (before it started,
        # or as it ran: raincheck.jobs.run_async).
        ok: bool | None = None
        if not task.cancelled():
            # run_async reports the job's every exception; anything else fails it too.
            ok = task.result() if task.exception() is None else False
        if ok is None:
            self.counters.add(dropped=1)
        else:
            self.counters.add(succeeded=int(ok), failed=int(not ok))
        with self.lock:
            del self._tasks[task]
            if self._waiting:
                self._fill()
            elif not self._tasks:
                self._idle.notify_all()

    def _cancel_all(self) -> None:
        for task in list(self._tasks):
            task.cancel()

    def _stopped(self) -> bool:
        return self._stopping

    def _wait_until_idle(self, deadline: float | None) -> bool:
        # Lock held.
        while self._tasks or self._waiting:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._idle.wait(None if remaining is None else min(remaining, threading.TIMEOUT_MAX))
        return True
