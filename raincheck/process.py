"""This process's raincheck state: its pool, its counters, whether it is exiting.

Everything here belongs to one process. A forked child (gunicorn ``--preload``,
uWSGI without ``lazy-apps``, ``multiprocessing``) must not use its parent's
pool, whose threads did not survive the fork, nor a lock a parent's thread may
have held when it forked (docs/design.rst, "Fork"). So all of it lives in one
``ProcessState``, and ``current()`` is the one place that asks whether the state
at hand is this process's; a child gets a fresh one as a whole.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time

from django.core.exceptions import ImproperlyConfigured

from raincheck import conf, greenlets, servers
from raincheck.callthreads import CallThreads
from raincheck.jobcalls import LoopCalls
from raincheck.jobs import find_jobs_of_workers
from raincheck.loop import JobLoop
from raincheck.pool import Pool
from raincheck.seats import Seats
from raincheck.stats import Counters, Stats
from raincheck.worker import run_on_worker, worker_exit

logger = logging.getLogger("raincheck")


class ProcessState:
    """The pool and the event loop for async jobs (each created on first use), the
    counters and the exit flag of one process."""

    __slots__ = (
        "call_threads",
        "counters",
        "exit_deadline",
        "exit_drained",
        "exit_drainer",
        "exiting",
        "lock",
        "loop",
        "pid",
        "pool",
        "seats",
        "stop_signalled",
    )

    def __init__(self) -> None:
        self.pid = os.getpid()
        # Guards creating and forgetting the pool, never held while a job runs.
        # An RLock, like the pool's and the counters': holds_no_lock() asks it.
        self.lock = threading.RLock()
        self.counters = Counters()
        self.pool: Pool | None = None
        self.loop: JobLoop | None = None
        # The pool's threads and async jobs' call threads share RAINCHECK_MAX_WORKERS.
        self.seats: Seats | None = None
        self.call_threads: CallThreads | None = None
        self.exiting = False
        # The exit drain runs once, on the thread of the first exit hook that
        # calls it (raincheck.drain): its ident, its deadline, and when it ended.
        self.exit_drainer: int | None = None
        self.exit_deadline: float | None = None
        self.exit_drained = threading.Event()
        # When a stop signal that the server handles reached this process
        # (note_stop): its deadline runs from there (stop_deadline).
        self.stop_signalled: float | None = None

    def live_pool(self, settings: conf.Conf) -> Pool | None:
        """The pool, created on first use; None once exit has begun, or where
        its threads could not run its jobs (uWSGI without threads, RQ's work
        horse, which ends as its job returns): the caller runs the jobs."""
        pool = self.pool
        if pool is not None:
            return pool
        with self.lock:
            if self.pool is None and not self.exiting:
                servers.warn_once_at_first_hand_off(settings.drain_on_sigterm)
                if servers.jobs_run_in_caller():
                    return None
                self.pool = Pool(
                    settings.max_workers,
                    run_job=run_on_worker,
                    on_worker_exit=worker_exit,
                    counters=self.counters,
                    seats=self._shared(settings)[0],
                    stop_by=self.stop_deadline,
                )
                find_jobs_of_workers(self.pool.running)
            return self.pool

    def live_loop(self, settings: conf.Conf) -> JobLoop | None:
        """The event loop for async jobs, made on first use; None once exit has
        begun, or under gevent (raincheck.greenlets runs those jobs instead)."""
        loop = self.loop
        if loop is not None:
            return loop
        if greenlets.patched() or servers.jobs_run_in_caller():
            return None
        with self.lock:
            if self.loop is None and not self.exiting:
                seats, call_threads = self._shared(settings)
                calls = LoopCalls(call_threads)
                self.loop = JobLoop(settings.async_concurrency, self.counters, calls, seats)
            return self.loop

    def _shared(self, settings: conf.Conf) -> tuple[Seats, CallThreads]:
        # Lock held. The seats, made with the call threads that share them with
        # the pool (raincheck.seats).
        if self.seats is None or self.call_threads is None:
            self.seats = Seats(settings.max_workers)
            self.call_threads = CallThreads(self.seats)
        return self.seats, self.call_threads

    def stop_deadline(self) -> float:
        """When this process's stop must be over (``time.monotonic()``); infinity
        while it is not stopping.

        ``RAINCHECK_SHUTDOWN_TIMEOUT`` bounds a stop from the moment raincheck
        learns of it: from the exit drain's start, or earlier, from a stop
        signal that the server handles and raincheck saw on its way
        (``note_stop()``), since requests still in flight may wait for room in a
        full queue before the process reaches its exit (docs/design.rst, "The
        stop's deadline").
        """
        if self.exit_deadline is not None:
            return self.exit_deadline
        if self.stop_signalled is None:
            return math.inf
        return self.stop_signalled + shutdown_timeout(report=False)

    def forget(self, pool: Pool | None, loop: JobLoop | None) -> None:
        """After they have drained: the next hand-off makes new ones."""
        with self.lock:
            if self.pool is pool:
                self.pool = None
            if self.loop is loop:
                self.loop = None


# By pid: a new child's first threads may race to replace the state, and
# dict.setdefault makes them agree on one without a lock inherited from the parent.
_states: dict[int, ProcessState] = {}
_state = _states.setdefault(os.getpid(), ProcessState())


def current() -> ProcessState:
    """This process's state; a fresh one in a forked child."""
    state = _state
    if state.pid == os.getpid():
        return state
    return _replace_after_fork()


def _replace_after_fork() -> ProcessState:
    # Called from os.fork()'s child hook, and on first use in a child that a C
    # fork made (uWSGI calls no Python fork hook unless --py-call-osafterfork).
    global _state
    state = _states.setdefault(os.getpid(), ProcessState())
    _state = state
    return state


os.register_at_fork(after_in_child=_replace_after_fork)


def note_stop() -> None:
    """A stop signal arrived, which the server handles. A signal handler calls it: no lock."""
    state = current()
    if state.stop_signalled is None:
        state.stop_signalled = time.monotonic()


def stop_overdue() -> bool:
    """Whether this process is stopping and its stop's deadline has passed."""
    return time.monotonic() >= current().stop_deadline()


def shutdown_timeout(*, report: bool = True) -> float:
    """``RAINCHECK_SHUTDOWN_TIMEOUT``, or its default if the settings are wrong
    (logged if ``report``): a stop goes on whatever they say."""
    try:
        return conf.get().shutdown_timeout
    except ImproperlyConfigured as exc:
        timeout = conf.SHUTDOWN_TIMEOUT_DEFAULT
        if report:
            logger.error("raincheck: %s Draining with the default %.0f s timeout.", exc, timeout)
        return timeout


def holds_no_lock() -> bool:
    """Whether this thread holds none of the locks a drain takes (a signal
    handler asks: it may have interrupted this thread inside one)."""
    state = current()
    locks = [state.lock, state.counters.lock]
    locks += [part.lock for part in (state.pool, state.loop) if part is not None]
    return not any(lock._is_owned() for lock in locks)  # type: ignore[attr-defined]


def stats() -> Stats:
    """A snapshot of this process's job counters."""
    state = current()
    queued = running = workers = peak = 0
    if state.pool is not None:
        queued, on_threads, workers = state.pool.load()
        running, peak = len(on_threads), state.pool.peak_workers
    if state.loop is not None:
        waiting, awaiting = state.loop.load()
        queued, running = queued + waiting, running + awaiting
    return state.counters.snapshot(queued, running, workers, peak)


def wait_idle(timeout: float | None = None) -> bool:
    """Wait until nothing is queued or running, on the pool or the loop; False on timeout."""
    state = current()
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        # A job on one may hand jobs to the other after that one was found idle.
        # Every hand-off counts ``scheduled`` before it puts, so a pass in which
        # the count did not move found both idle at once.
        before = state.counters.scheduled
        for part in (state.pool, state.loop):
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            if part is not None and not part.wait_idle(left):
                return False
        if state.counters.scheduled == before:
            return True


def _resize_pool() -> None:
    state = current()
    # An invalid value is reported by the checks and by the next conf.get().
    with contextlib.suppress(Exception):
        max_workers = conf.get().max_workers
        if state.seats is not None:
            state.seats.set_limit(max_workers)
        if state.pool is not None:
            state.pool.resize(max_workers)


conf.on_change(_resize_pool)
