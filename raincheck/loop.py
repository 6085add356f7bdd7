"""raincheck's event loop for async jobs: one thread, many jobs awaiting at once, a bound.

An ``async def`` job spends most of its time awaiting (a webhook, an email
API). On a pool thread it would hold that thread while it waits; here, up to
``RAINCHECK_ASYNC_CONCURRENCY`` of them run at once as tasks of one event loop,
on one daemon thread named ``raincheck-loop`` started with the first async job.
Each task is made in its job's context. The drain waits for them within its
deadline, then cancels the rest and names them (docs/design.rst, "Async jobs").
"""

from __future__ import annotations

import asyncio
import threading
import time

from raincheck.jobs import Job, run_async
from raincheck.stats import Counters


class JobLoop:
    """The event loop thread, its tasks, and what the drain and ``stats()`` need of them."""

    def __init__(self, limit: int, counters: Counters) -> None:
        self.counters = counters
        self._limit = limit
        # Reentrant only so that a signal handler can tell that its thread holds it.
        self.lock = threading.RLock()
        self._idle = threading.Condition(self.lock)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tasks: dict[asyncio.Task[None], Job] = {}
        # Waiting for the concurrency bound: accepted, not started. Only the
        # loop's thread counts starts, so a job's start takes no lock.
        self._accepted = 0
        self._started = 0
        self._active = 0  # accepted, not finished
        self._closed = False
        # Set on the loop's thread at the drain's deadline, before it cancels the
        # tasks: a job not started by then never starts (loop's thread only).
        self._stopping = False
        # Accepted jobs the loop has not made tasks of yet. The loop is woken
        # only for the first: under load, one wake-up takes many requests' jobs.
        self._pending: list[Job] = []

    def put(self, jobs: list[Job], *, max_queue: int) -> list[Job]:
        """Accept what fits under ``max_queue`` waiting jobs; return the rest (lock free)."""
        with self.lock:
            if self._closed:
                return jobs
            room = max_queue - (self._accepted - self._started) if max_queue else len(jobs)
            accepted, rest = jobs[: max(room, 0)], jobs[max(room, 0) :]
            if not accepted:
                return rest
            loop = self._loop or self._start()
            if loop is None:
                return jobs
            self._accepted += len(accepted)
            self._active += len(accepted)
            wake = not self._pending
            self._pending += accepted
        if wake:
            # Outside the lock: the wake-up writes to a socket, which lets the
            # loop's thread run, and its first step is to take the lock.
            loop.call_soon_threadsafe(self._spawn)
        return rest

    def load(self) -> tuple[int, int]:
        """``(waiting, running)`` async jobs right now."""
        with self.lock:
            waiting = self._accepted - self._started
            return waiting, self._active - waiting

    def wait_idle(self, timeout: float | None) -> bool:
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            return self._wait_until_idle(deadline)

    def drain(self, timeout: float | None) -> list[Job]:
        """Stop accepting; wait up to ``timeout``; cancel and return what is left."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self.lock:
            self._closed = True
            if self._wait_until_idle(deadline):
                self._stop()
                return []
            left = list(self._tasks.items())
            # Accepted, but the loop's thread never got to them (a job blocked it).
            # Taken back from the accepted: only the loop's thread counts starts.
            never_started, self._pending = self._pending, []
            self._accepted -= len(never_started)
            self._active -= len(never_started)
        self.counters.add(dropped=len(never_started))
        loop = self._loop
        if loop is not None:
            loop.call_soon_threadsafe(self._cancel_all)
            with self.lock:
                # Cancelled tasks report and count themselves; give them a moment.
                self._wait_until_idle(time.monotonic() + 1.0)
                self._stop()
        return [*(job for _, job in left), *never_started]

    def _start(self) -> asyncio.AbstractEventLoop | None:
        # Lock held.
        loop = asyncio.new_event_loop()
        thread = threading.Thread(
            target=self._serve, args=(loop,), name="raincheck-loop", daemon=True
        )
        try:
            thread.start()
        except RuntimeError:  # interpreter shutdown, or no thread to be had
            loop.close()
            return None
        self._loop = loop
        return loop

    def _serve(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        self._semaphore = asyncio.Semaphore(self._limit)
        try:
            loop.run_forever()
        finally:
            loop.close()

    def _stop(self) -> None:
        # Lock held.
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._loop.stop)

    def _spawn(self) -> None:
        loop = self._loop
        assert loop is not None
        with self.lock:
            jobs, self._pending = self._pending, []
        # Made in the job's context: the task runs in a copy of it.
        tasks = [job[3].run(loop.create_task, self._run(job)) for job in jobs]
        with self.lock:
            self._tasks.update(zip(tasks, jobs, strict=True))

    def _cancel_all(self) -> None:
        # On the loop's thread, in one step: had each task been cancelled in a
        # step of its own, every running job cancelled would let a waiting one
        # start (and fail) after the deadline.
        self._stopping = True
        for task in list(self._tasks):
            task.cancel()

    def _stopped(self) -> bool:
        return self._stopping

    async def _run(self, job: Job) -> None:
        started = False
        ok: bool | None = None
        try:
            async with self._semaphore:
                if not self._stopping:
                    started = True
                    self._started += 1
                    ok = await run_async(job, self._stopped)
        except asyncio.CancelledError:
            pass  # cancelled by the drain before it started: counted as dropped
        finally:
            if started:
                # None: running at the deadline, cancelled by the drain, which names it.
                if ok is None:
                    self.counters.add(dropped=1)
                else:
                    self.counters.add(succeeded=int(ok), failed=int(not ok))
            else:
                self._started += 1
                self.counters.add(dropped=1)
            with self.lock:
                self._active -= 1
                task = asyncio.current_task()
                if task is not None:
                    self._tasks.pop(task, None)
                if not self._active:
                    self._idle.notify_all()

    def _wait_until_idle(self, deadline: float | None) -> bool:
        # Lock held.
        while self._active:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            self._idle.wait(None if remaining is None else min(remaining, threading.TIMEOUT_MAX))
        return True
