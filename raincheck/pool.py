"""The process-wide executor: bounded queue, lazily started daemon workers, drain.

Why not ``concurrent.futures.ThreadPoolExecutor``: at interpreter exit the stdlib
joins its threads with no timeout before any ``atexit`` hook runs, so one hung job
would hold the process forever (see docs/design.rst). raincheck's workers are
daemon threads the stdlib does not join, and ``drain()`` gives them a deadline.
The class keeps the ``concurrent.futures.Executor`` interface (``submit``,
``shutdown``) so it can stand in wherever an executor is expected.
"""

from __future__ import annotations

import itertools
import os
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Executor, Future
from typing import Any, Final, TypeVar

from typing_extensions import ParamSpec

from raincheck.jobs import Job
from raincheck.stats import Counters, Stats

P = ParamSpec("P")
T = TypeVar("T")

_thread_numbers: Final = itertools.count(1)

# The most jobs a worker takes from the queue in one step. Each step costs a
# lock round-trip that, with several workers, turns into a GIL hand-off; in
# steps of 16 a burst of short jobs runs about three times faster.
MAX_BATCH: Final = 16


class Worker(threading.Thread):
    """A pool thread; the type tells ``block`` backpressure it must never wait."""


def in_worker() -> bool:
    return isinstance(threading.current_thread(), Worker)


class HandOff:
    """What ``RaincheckExecutor.hand_off`` could not queue."""

    __slots__ = ("dropped", "run_in_caller")

    def __init__(self, run_in_caller: list[Job], dropped: list[Job]) -> None:
        self.run_in_caller = run_in_caller
        self.dropped = dropped


_NOTHING_LEFT: Final = HandOff([], [])


class RaincheckExecutor(Executor):
    """A bounded thread pool that drains within a deadline."""

    def __init__(
        self,
        max_workers: int,
        *,
        run_job: Callable[[Job], bool],
        on_worker_exit: Callable[[], None] = lambda: None,
        counters: Counters | None = None,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.pid = os.getpid()
        self.counters = counters if counters is not None else Counters()
        self._max_workers = max_workers
        self._run_job = run_job
        self._on_worker_exit = on_worker_exit
        self._lock = self.counters.lock
        self._has_work = threading.Condition(self._lock)
        self._has_room = threading.Condition(self._lock)
        self._is_idle = threading.Condition(self._lock)
        self._queue: deque[Job] = deque()
        self._running: dict[int, Job] = {}
        # Jobs a worker took in one step and has not started yet, by worker. The
        # owner takes from the left without the lock; _reclaim() takes from the
        # right with it; each deque operation is atomic, so each job runs once.
        self._batches: dict[int, deque[Job]] = {}
        self._workers: set[Worker] = set()
        self._idle_workers = 0
        self._live_threads = 0  # started and not yet done closing their connections
        self._room_waiters = 0
        self._closed = False

    # -- hand-off -----------------------------------------------------------

    def hand_off(
        self,
        jobs: list[Job],
        *,
        max_queue: int = 0,
        policy: str = "block",
        block_timeout: float = 0.0,
    ) -> HandOff:
        """Queue ``jobs`` in one step; return what the caller must run or report.

        ``max_queue`` bounds waiting jobs (0: unbounded); ``policy`` says what
        happens to the jobs that do not fit (see SPEC §4). Never raises.
        """
        with self._lock:
            self.counters.scheduled += len(jobs)
            if self._closed:
                self.counters.ran_in_caller += len(jobs)
                return HandOff(list(jobs), [])
            queue = self._queue
            room = max_queue - self._waiting() if max_queue else len(jobs)
            if room >= len(jobs):
                queue.extend(jobs)
                stranded = self._wake()
                if stranded is None:
                    return _NOTHING_LEFT
                self.counters.ran_in_caller += len(stranded.run_in_caller)
                return stranded
            fitting = max(room, 0)
            queue.extend(jobs[:fitting])
            rest = jobs[fitting:]
            result = HandOff([], [])
            if policy == "drop":
                result.dropped = rest
            elif policy == "drop_oldest":
                # The oldest may be in a worker's batch. With the lock held no new
                # batch forms, so after this the queue holds every waiting job.
                self._reclaim()
                for job in rest:
                    if len(queue) >= max_queue:
                        result.dropped.append(queue.popleft())
                    queue.append(job)
            elif policy == "block" and not in_worker() and self._room_waiters < self._max_workers:
                # At most max_workers threads wait for room at once. Under ASGI each
                # request ends on a thread of its own and the client already has its
                # response, so waiting does not slow new requests down: unbounded,
                # waiting threads would pile up by the thousand. Past the bound, the
                # caller runs its jobs, as block does when its timeout passes.
                result.run_in_caller = self._wait_for_room(rest, max_queue, block_timeout)
            else:
                result.run_in_caller = list(rest)
            stranded = self._wake()
            if stranded is not None:
                result.run_in_caller.extend(stranded.run_in_caller)
            self.counters.dropped += len(result.dropped)
            self.counters.ran_in_caller += len(result.run_in_caller)
            return result

    def _wait_for_room(self, rest: list[Job], max_queue: int, timeout: float) -> list[Job]:
        # Called with the lock held. Returns the jobs that never found room.
        deadline = time.monotonic() + timeout
        pending = deque(rest)
        while pending and not self._closed:
            for _ in range(min(max_queue - self._waiting(), len(pending))):
                self._queue.append(pending.popleft())
            stranded = self._wake()
            if stranded is not None:
                return [*stranded.run_in_caller, *pending]
            remaining = deadline - time.monotonic()
            if not pending or remaining <= 0:
                break
            self._room_waiters += 1
            try:
                self._has_room.wait(min(remaining, threading.TIMEOUT_MAX))
            finally:
                self._room_waiters -= 1
        return list(pending)

    def _wake(self) -> HandOff | None:
        """Wake idle workers and start new ones for queued jobs (lock held).

        Returns the queued jobs, taken back out of the queue, when no worker
        exists and none can be started: the caller must run them.
        """
        waiting = len(self._queue)
        if self._idle_workers:
            # Wake one worker, whatever the batch: each wake-up costs the request
            # thread a futex call (and a context switch when the woken thread
            # lands on its CPU). The woken worker wakes the next (see _work).
            self._has_work.notify()
        missing = min(waiting - self._idle_workers, self._max_workers - len(self._workers))
        for _ in range(missing):
            worker = Worker(
                target=self._work, name=f"raincheck-{next(_thread_numbers)}", daemon=True
            )
            try:
                worker.start()
            except RuntimeError:
                # Interpreter shutdown (3.12+) or the OS refused a thread.
                break
            self._workers.add(worker)
            self._live_threads += 1
        if self._workers or not self._queue:
            return None
        stranded = list(self._queue)
        self._queue.clear()
        return HandOff(stranded, [])

    def _waiting(self) -> int:
        """Accepted jobs not started yet: queued, or in a worker's batch (lock held)."""
        if not self._batches:
            return len(self._queue)
        return len(self._queue) + sum(map(len, self._batches.values()))

    def _reclaim(self) -> int:
        """Put the jobs of every worker's batch back at the head of the queue (lock held).

        Their owners are running a job meanwhile; they find their batch empty
        when that job ends. Returns how many jobs came back.
        """
        reclaimed = 0
        for batch in self._batches.values():
            taken: list[Job] = []
            while True:
                try:
                    taken.append(batch.pop())
                except IndexError:
                    break
            self._queue.extendleft(taken)  # popped newest first: the order is kept
            reclaimed += len(taken)
        return reclaimed

    # -- workers ------------------------------------------------------------

    def _work(self) -> None:
        me = threading.get_ident()
        worker = threading.current_thread()
        assert isinstance(worker, Worker)
        counters = self.counters
        succeeded = failed = 0
        try:
            while True:
                with self._lock:
                    if succeeded or failed:
                        # One acquisition accounts for the last step and takes the next.
                        del self._running[me]
                        self._batches.pop(me, None)
                        counters.succeeded += succeeded
                        counters.failed += failed
                    taken = self._take(me, worker)
                if taken is None:
                    return
                succeeded, failed = self._run(me, *taken)
        finally:
            self._on_worker_exit()
            with self._lock:
                self._live_threads -= 1
                self._is_idle.notify_all()

    def _take(self, me: int, worker: Worker) -> tuple[Job, deque[Job] | None] | None:
        """The next job, and the rest of its batch if any; None: the worker leaves (lock held)."""
        queue = self._queue
        # Leave when the pool shrank (even under load) or is closed and empty.
        if len(self._workers) > self._max_workers:
            self._workers.discard(worker)
            return None
        # A worker never sleeps while another holds jobs it has not started:
        # a slow job must not keep the rest of its batch from idle workers.
        while not queue and not (self._batches and self._reclaim()):
            if not self._running:
                self._is_idle.notify_all()
            if self._closed or len(self._workers) > self._max_workers:
                self._workers.discard(worker)
                return None
            self._idle_workers += 1
            self._has_work.wait()
            self._idle_workers -= 1
        # Take a share of a long queue in one step, one job of a short one:
        # a request's few slow jobs still start on as many workers.
        size = min(len(queue) // len(self._workers), MAX_BATCH)
        batch = None
        if size > 1:
            batch = deque([queue.popleft() for _ in range(size)])
            self._batches[me] = batch
            job = batch.popleft()
        else:
            job = queue.popleft()
        self._running[me] = job
        if queue and self._idle_workers:
            self._has_work.notify()
        if self._room_waiters:
            self._has_room.notify()
        return job, batch

    def _run(self, me: int, job: Job, batch: deque[Job] | None) -> tuple[int, int]:
        """Run ``job``, then the rest of ``batch`` (without the lock); (succeeded, failed)."""
        run_job, running = self._run_job, self._running
        succeeded = failed = 0
        while True:
            try:
                ok = run_job(job)
            except BaseException:
                # run_job logs Exceptions itself; SystemExit and friends from a
                # job must not kill the worker either.
                ok = False
            if ok:
                succeeded += 1
            else:
                failed += 1
            if batch is None:
                return succeeded, failed
            try:
                job = batch.popleft()
            except IndexError:  # all run, or reclaimed by another worker
                return succeeded, failed
            running[me] = job  # without the lock: only a drain's deadline log reads it

    # -- observation and shutdown ---------------------------------------------

    def stats(self) -> Stats:
        with self._lock:
            return self.counters.snapshot(
                queued=self._waiting(), running=len(self._running), workers=len(self._workers)
            )

    def resize(self, max_workers: int) -> None:
        """Change the worker bound; extra workers leave once they are idle."""
        with self._lock:
            self._max_workers = max_workers
            self._has_work.notify_all()
            self._wake()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or running. False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            return self._wait_until(lambda: not self._queue and not self._running, deadline)

    def drain(self, timeout: float | None) -> list[Job]:
        """Stop accepting, wait up to ``timeout`` for every job, return the unfinished.

        Jobs still queued at the deadline are discarded (counted as dropped);
        running ones cannot be stopped and are returned too, for the log.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._close()
            # Idle workers now leave, closing their database connections.
            finished = self._wait_until(lambda: not self._queue and not self._running, deadline)
            if finished:
                self._wait_until(lambda: not self._live_threads, deadline)
                return []
            self._reclaim()
            unfinished = [*self._running.values(), *self._queue]
            self.counters.dropped += len(self._queue)
            self._queue.clear()
            return unfinished

    def _wait_until(self, predicate: Callable[[], bool], deadline: float | None) -> bool:
        # Lock held. Every state change that can make a predicate true notifies _is_idle.
        while not predicate():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            # An "infinite" setting (float("inf"), 1e10) is longer than wait() accepts.
            self._is_idle.wait(None if remaining is None else min(remaining, threading.TIMEOUT_MAX))
        return True

    def _close(self) -> None:
        # Lock held. Hand-offs from now on go back to their callers; idle workers
        # leave once the queue is empty; threads blocked for room stop waiting.
        self._closed = True
        self._has_work.notify_all()
        self._has_room.notify_all()

    @property
    def closed(self) -> bool:
        return self._closed

    # -- concurrent.futures.Executor ------------------------------------------

    def submit(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> Future[T]:
        """Run ``fn(*args, **kwargs)`` on the pool; unbounded, like the stdlib's."""
        future: Future[T] = Future()
        job: Job = (_FutureCall(fn, future), args, kwargs)
        with self._lock:
            if self._closed:
                raise RuntimeError("cannot schedule new futures after shutdown")
            self.counters.scheduled += 1
            self._queue.append(job)
            stranded = self._wake()
        if stranded is not None:
            for job in stranded.run_in_caller:
                ok = self._run_job(job)
                with self._lock:
                    self.counters.ran_in_caller += 1
                    if ok:
                        self.counters.succeeded += 1
                    else:
                        self.counters.failed += 1
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        with self._lock:
            self._close()
            if cancel_futures:
                # Like the stdlib: pending futures are cancelled. Jobs handed off
                # by raincheck are not futures and still run.
                self._reclaim()
                kept = [job for job in self._queue if not isinstance(job[0], _FutureCall)]
                for fn, _, _ in self._queue:
                    if isinstance(fn, _FutureCall):
                        fn.future.cancel()
                self.counters.dropped += len(self._queue) - len(kept)
                self._queue.clear()  # in place: workers hold a reference to it
                self._queue.extend(kept)
                self._is_idle.notify_all()
        if wait:
            self.wait_idle()


class _FutureCall:
    """Adapts ``submit()``'s callable to a job whose outcome goes to a Future."""

    is_async = False
    on_success = False

    def __init__(self, fn: Callable[..., Any], future: Future[Any]) -> None:
        self.fn = fn
        self.future = future
        self.name = getattr(fn, "__qualname__", repr(fn))

    @property
    def func(self) -> Callable[..., None]:
        return self._call

    def _call(self, *args: Any, **kwargs: Any) -> None:
        if not self.future.set_running_or_notify_cancel():
            return
        try:
            result = self.fn(*args, **kwargs)
        except BaseException as exc:
            self.future.set_exception(exc)
        else:
            self.future.set_result(result)
