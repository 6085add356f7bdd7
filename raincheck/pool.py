"""The pool: a bounded queue of jobs, daemon worker threads started on demand, a drain.

Why not ``concurrent.futures.ThreadPoolExecutor``: at interpreter exit the stdlib
joins its threads with no timeout before any ``atexit`` hook runs, so one hung job
would hold the process forever (docs/design.rst, "The pool"). raincheck's workers
are daemon threads the stdlib does not join, and ``drain()`` gives them a deadline.
The pool knows nothing of Django: it is given the function that runs a job.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from raincheck.backlog import Backlog, Overflow
from raincheck.jobs import Job
from raincheck.room import Line, never
from raincheck.seats import Seats
from raincheck.sizing import KEEP_ALIVE, MIN_THREADS, ThreadBudget
from raincheck.stats import Counters
from raincheck.steps import new_worker, run_step, tally_steps


class Pool:
    """A bounded, elastic thread pool that drains within a deadline."""

    def __init__(
        self,
        max_workers: int,
        *,
        run_job: Callable[[Job], bool],
        on_worker_exit: Callable[[], None] = lambda: None,
        counters: Counters | None = None,
        seats: Seats | None = None,
        stop_by: Callable[[], float] = never,
    ) -> None:
        if max_workers < 1:
            raise ValueError("max_workers must be at least 1")
        self.counters = counters if counters is not None else Counters()
        self._max_workers = max_workers
        self._run_job = run_job
        self._on_worker_exit = on_worker_exit
        # Reentrant only so that a signal handler can tell that its thread holds it.
        self.lock = self._lock = threading.RLock()
        self._has_work = threading.Condition(self._lock)
        self._is_idle = threading.Condition(self._lock)
        self._backlog = Backlog()
        self._queue = self._backlog.queue
        # The job each busy worker runs, by thread id: current_job() reads it too.
        self.running: dict[int, Job] = {}
        # Each busy worker's step: [succeeded, failed] so far (raincheck.steps).
        self._outcomes: dict[int, list[int]] = {}
        # A drain's deadline passed and it counted the steps under way: their
        # workers count nothing more, and leave.
        self._abandoned = False
        self._workers: set[threading.Thread] = set()
        self.peak_workers = 0  # the most threads it ever had at once
        self._budget = ThreadBudget(max_workers, time.monotonic(), stop_by)
        self._idle_workers = 0
        self._live_threads = 0  # started and not yet done closing their connections
        self._line = Line(stop_by)  # threads waiting for room (block)
        self._max_queue = 0  # as of the last put()
        self._closed = False
        # Shared with async jobs' threads (raincheck.seats); None: the cap alone.
        self._seats = seats
        if seats is not None:
            seats.on_wanted, seats.on_freed_for_pool = self._shed, self._grow

    def put(
        self,
        jobs: list[Job],
        *,
        max_queue: int = 0,
        policy: str = "block",
        block_timeout: float = 0.0,
    ) -> Overflow | None:
        """Queue ``jobs`` in one step; None, or the jobs the caller must run or report.

        ``max_queue`` bounds waiting jobs (0: unbounded); ``policy`` decides for the
        rest (docs/design.rst, "Backpressure"). Never raises.
        """
        with self._lock:
            if self._closed:
                return Overflow(list(jobs), [])
            queue = self._queue
            self._max_queue = max_queue
            room = max_queue - len(self._backlog) if max_queue else len(jobs)
            if self._line and policy == "block":
                room = 0  # the threads already waiting go first (raincheck.room)
            if room >= len(jobs):
                queue.extend(jobs)
                stranded = self._wake()
                return None if stranded is None else Overflow(stranded, [])
            fitting = max(room, 0)
            queue.extend(jobs[:fitting])
            rest = jobs[fitting:]
            result = Overflow([], [])
            if policy == "drop":
                result.dropped = rest
            elif policy == "drop_oldest":
                result.dropped = self._backlog.push_dropping_oldest(rest, max_queue)
            elif policy == "block" and len(self._line) < self._max_workers:
                # At most max_workers threads wait for room. Under ASGI each request
                # ends on a thread of its own, its client answered: unbounded, they
                # would pile up by the thousand. Past the bound, the caller runs its
                # jobs, as block does when its timeout passes.
                result.run_in_caller = self._line.wait_for_room(
                    self._lock, rest, block_timeout, self._queue_from_line, lambda: self._closed
                )
            else:
                result.run_in_caller = list(rest)
            stranded = self._wake()
            if stranded is not None:
                result.run_in_caller.extend(stranded)
            return result

    def _queue_from_line(self, pending: deque[Job]) -> list[Job] | None:
        """Queue what fits of ``pending`` (the first in line's); see _wake (lock held)."""
        for _ in range(min(self._max_queue - len(self._backlog), len(pending))):
            self._queue.append(pending.popleft())
        return self._wake()

    def _wake(self) -> list[Job] | None:
        """Wake an idle worker, or start workers, for queued jobs (lock held); the
        queued jobs, taken back, when no worker exists or can start."""
        waiting = len(self._queue)
        if self._idle_workers:
            # Wake one worker, whatever the batch: each wake-up costs the request
            # thread a futex call (and a context switch when the woken thread
            # lands on its CPU). The woken worker wakes the next (see _work).
            self._has_work.notify()
        self._start_workers(waiting)
        if self._workers or not self._queue:
            return None
        stranded = list(self._queue)
        self._queue.clear()
        return stranded

    def _start_workers(self, waiting: int) -> None:  # lock held
        target = min(self._budget.target, self._max_workers)
        for _ in range(min(waiting - self._idle_workers, target - len(self._workers))):
            if not self._start_worker():
                break

    def _start_worker(self) -> bool:  # lock held
        seats = self._seats
        if seats is not None and not seats.take(pool=True):
            seats.on_full()  # an idle call thread leaves (raincheck.callthreads)
            # None past the cap: with no thread, the jobs go back to the caller (_wake).
            if not seats.take(pool=True):
                seats.pool_short = True  # the next call thread given back may leave
                return False
        worker = new_worker(self._work)
        try:
            worker.start()
        except RuntimeError:  # interpreter shutdown (3.12+), or the OS refused a thread
            if seats is not None:
                seats.give_back(pool=True)
            return False
        self._workers.add(worker)
        self._live_threads += 1
        self.peak_workers = max(self.peak_workers, len(self._workers))
        return True

    def _work(self) -> None:
        me, worker = threading.get_ident(), threading.current_thread()
        with self._lock:
            taken = self._take(me, worker)
        while taken is not None:
            wall, outcomes = time.monotonic(), self._outcomes[me]
            if not run_step(self._run_job, self.running, me, *taken, outcomes=outcomes):
                return  # in the child of a job's fork (raincheck.steps)
            now = time.monotonic()
            with self._lock:
                del self.running[me], self._outcomes[me]
                self._backlog.done(me, sum(outcomes), now - wall)
                if self._abandoned:  # the drain counted this step's jobs at its deadline
                    self._workers.discard(worker)
                    break
                # With running[me] gone: wait_idle() never returns before stats() add up.
                self.counters.add(succeeded=outcomes[0], failed=outcomes[1])
                waiting = 0 if self._idle_workers else len(self._queue)
                callers_wait = bool(self._line) or 0 < self._max_queue <= len(self._backlog)
                if self._budget.step_done(now - wall, sum(outcomes), now, waiting, callers_wait):
                    self._wake()
                taken = self._take(me, worker)
        self._on_worker_exit()
        with self._lock:
            self._live_threads -= 1
            self._is_idle.notify_all()
        if self._seats is not None:
            self._seats.leave(pool=True)  # to a job waiting for a call thread, if one waits

    def _grow(self) -> None:  # a seat was kept for it: a thread for the jobs waiting
        with self._lock:
            if self._queue and not self._idle_workers and self._workers and not self._closed:
                self._start_worker()

    def _shed(self) -> None:
        """An async job waits for a seat: an idle thread leaves now, not at its keep-alive."""
        with self._lock:
            self._has_work.notify()

    def _take(self, me: int, worker: threading.Thread) -> tuple[Job, deque[Job] | None] | None:
        """The next job, and the rest of its batch if any; None: the worker leaves (lock held)."""
        queue, seats, workers = self._queue, self._seats, self._workers
        # Leave when the pool shrank (even under load), when raincheck-loop waits for
        # a seat its threads hold (raincheck.seats), or closed and empty.
        shrank = len(workers) > min(self._max_workers, max(self._budget.target, MIN_THREADS))
        if shrank or (seats is not None and seats.pool_over(len(workers))):
            workers.discard(worker)
            return None
        # A worker never sleeps while another holds jobs it has not started:
        # a slow job must not keep the rest of its batch from idle workers.
        while not queue and not (self._backlog.batches and self._backlog.reclaim()):
            if not self.running:
                self._is_idle.notify_all()
            seat_wanted = seats is not None and seats.pool_thread_wanted(len(workers))
            if self._closed or len(workers) > self._max_workers or seat_wanted:
                workers.discard(worker)
                return None
            self._idle_workers += 1
            self._budget.went_idle()
            woken = self._has_work.wait(KEEP_ALIVE)
            self._idle_workers -= 1
            if not woken and not queue and len(self._workers) > MIN_THREADS:
                self._workers.discard(worker)  # idle too long: retire
                self._budget.resized(self._max_workers, len(self._workers))
                return None
        job, batch = self._backlog.take(me, len(self._workers))
        self.running[me], self._outcomes[me] = job, [0, 0]
        if queue and self._idle_workers:
            self._has_work.notify()
        if self._line:
            self._line.room_made(self._max_queue - len(self._backlog), self._max_queue)
        return job, batch

    def load(self) -> tuple[int, list[Job], int]:
        """``(queued, the running jobs, workers)`` right now."""
        with self._lock:
            return len(self._backlog), list(self.running.values()), len(self._workers)

    def resize(self, max_workers: int) -> None:
        """Change the cap; extra workers leave once they are idle."""
        with self._lock:
            self._max_workers = max_workers
            self._budget.resized(max_workers, len(self._workers))
            self._has_work.notify_all()
            self._wake()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until nothing is queued or running. False if ``timeout`` passed first."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            return self._wait_until(lambda: not self._queue and not self.running, deadline)

    def drain(self, timeout: float | None) -> list[Job]:
        """Stop accepting, wait up to ``timeout`` for every job, return the unfinished.

        Jobs still queued at the deadline are discarded (counted as dropped);
        running ones cannot be stopped and are returned too, for the log.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            self._close()
            # Every thread the cap allows, for the jobs left (ThreadBudget.finish_up).
            self._budget.finish_up()
            self._start_workers(len(self._backlog))  # batches too: reclaimed
            # Idle workers now leave, closing their database connections.
            finished = self._wait_until(lambda: not self._queue and not self.running, deadline)
            if finished:
                self._wait_until(lambda: not self._live_threads, deadline)
                return []
            never_started = self._backlog.discard()
            # The steps under way count as they stand (raincheck.steps), no more.
            tally = tally_steps(self._outcomes, self._backlog.held, self.running)
            self._abandoned = True
            dropped = tally.dropped + len(never_started)
            self.counters.add(succeeded=tally.succeeded, failed=tally.failed, dropped=dropped)
            return [*tally.unfinished, *never_started]

    def _wait_until(self, predicate: Callable[[], bool], deadline: float | None) -> bool:
        # Lock held; whatever can make a predicate true notifies _is_idle.
        while not predicate():
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                return False
            # An "infinite" setting (float("inf"), 1e10) is longer than wait() accepts.
            self._is_idle.wait(None if remaining is None else min(remaining, threading.TIMEOUT_MAX))
        return True

    def _close(self) -> None:
        # Lock held. Later hand-offs go back to their callers; workers leave once idle.
        self._closed = True
        self._has_work.notify_all()
        self._line.wake_all()
