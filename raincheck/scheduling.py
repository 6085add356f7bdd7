"""Where a scheduled job goes: a request's buffer, the pool, or the caller.

This module owns the process's one pool: it creates it lazily on the first
hand-off, replaces it in a forked child, and drains it at exit.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Final

from raincheck import conf, servers, signals
from raincheck.jobs import (
    Job,
    call,
    close_thread_loop,
    close_worker_connections,
    run,
    run_in_worker,
    send_robust,
)
from raincheck.pool import RaincheckExecutor
from raincheck.stats import Counters, Stats

logger = logging.getLogger("raincheck")


class Route:
    """Switches read by ``schedule()`` on every call, kept as cheap as a flag.

    ``slow`` is True whenever ``schedule()`` must look further than "append to
    the request's buffer, or hand off": settings not loaded yet, IMMEDIATE, a
    capture() in progress. It is recomputed after every settings change.
    """

    slow = True
    capture: list[list[Job]] = []  # noqa: RUF012 - one process-wide stack


route: Final = Route()

_pool: RaincheckExecutor | None = None
_counters = Counters()
_counters_pid = os.getpid()
_exiting = False
_creation_locks: dict[int, threading.Lock] = {}


def schedule_slow(job: Job, *, to_tasks_backend: bool = True) -> Job | None:
    """The cases that bypass the plain path. Returns the job to buffer or hand
    off as usual (possibly replaced by one that enqueues it on a Tasks backend),
    or None when the job has been dealt with.

    ``to_tasks_backend=False`` is for jobs that already come from a Tasks
    backend (``raincheck.backends``): routing them again would loop.
    """
    if route.capture:
        route.capture[-1].append(job)
        return None
    settings = conf.get()
    if settings.immediate:
        call(*job)
        return None
    if settings.tasks_backend is not None:
        if not to_tasks_backend:
            return job
        from raincheck.tasks_routing import enqueue_later

        # Validated now, so a job the backend cannot take fails in the view.
        return enqueue_later(job, settings.tasks_backend)
    route.slow = False
    return job


def _settings_changed() -> None:
    route.slow = True
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        # An invalid value is reported by the checks and by the next conf.get().
        with contextlib.suppress(Exception):
            pool.resize(conf.get().max_workers)


conf.on_change(_settings_changed)


def hand_off(jobs: list[Job]) -> None:
    """Give jobs whose request has ended (or that had none) to the pool."""
    settings = conf.get()
    if not settings.run_async:
        run_here(jobs)
        return
    pool = _current_pool(settings.max_workers)
    if pool is None:
        run_here(jobs, in_caller=True)
        return
    result = pool.hand_off(
        jobs,
        max_queue=settings.max_queue,
        policy=settings.backpressure,
        block_timeout=settings.block_timeout,
    )
    if result.dropped:
        _report_dropped(result.dropped, settings.backpressure)
    if result.run_in_caller:
        _run_counted(result.run_in_caller)


def run_here(jobs: list[Job], *, in_caller: bool = False) -> None:
    """Run jobs one after another in this thread (RUN_ASYNC=False, or no pool)."""
    counters = _process_counters()
    with counters.lock:
        counters.scheduled += len(jobs)
        if in_caller:
            counters.ran_in_caller += len(jobs)
    _run_counted(jobs)


def _run_counted(jobs: list[Job]) -> None:
    counters = _process_counters()
    for job in jobs:
        ok = run(job)
        with counters.lock:
            if ok:
                counters.succeeded += 1
            else:
                counters.failed += 1


def _report_dropped(jobs: list[Job], policy: str) -> None:
    for fn, args, kwargs in jobs:
        logger.warning("raincheck job %s dropped: the queue is full (policy %r)", fn.name, policy)
        send_robust(signals.job_dropped, sender=fn.func, args=args, kwargs=kwargs, reason=policy)


def _process_counters() -> Counters:
    global _counters, _counters_pid
    pid = os.getpid()
    if _counters_pid != pid:
        _counters, _counters_pid = Counters(), pid
    return _counters


def _on_worker_exit() -> None:
    close_thread_loop()
    close_worker_connections()


def _current_pool(max_workers: int) -> RaincheckExecutor | None:
    """This process's pool, created on first use; None once exit has begun."""
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        return pool
    return _create_pool(max_workers)


def _create_pool(max_workers: int) -> RaincheckExecutor | None:
    global _pool
    # A lock inherited through fork may be held by a thread that does not exist
    # in the child, so each process gets its own (dict.setdefault is atomic).
    with _creation_locks.setdefault(os.getpid(), threading.Lock()):
        pool = _pool
        if pool is not None and pool.pid == os.getpid():
            return pool
        if _exiting:
            return None
        settings = conf.get()
        servers.warn_once_at_first_hand_off(settings.drain_on_sigterm)
        if servers.threads_disabled():
            return None
        pool = RaincheckExecutor(
            max_workers,
            run_job=run_in_worker,
            on_worker_exit=_on_worker_exit,
            counters=_process_counters(),
        )
        _pool = pool
        return pool


def stats() -> Stats:
    """A snapshot of this process's job counters."""
    pool = _pool
    if pool is not None and pool.pid == os.getpid():
        return pool.stats()
    counters = _process_counters()
    with counters.lock:
        return counters.snapshot()


def shutdown(timeout: float | None = None) -> None:
    """Stop the pool: drain it for up to ``timeout`` seconds (default
    ``RAINCHECK_SHUTDOWN_TIMEOUT``) and log the jobs that did not finish.

    Jobs handed off while it drains run in the caller. The next hand-off after
    it returns creates a new pool.
    """
    global _pool
    pool = _pool
    if pool is None or pool.pid != os.getpid():
        return
    if timeout is None:
        timeout = conf.get().shutdown_timeout
    unfinished = pool.drain(timeout)
    if _pool is pool:
        _pool = None
    if unfinished:
        names = ", ".join(fn.name for fn, _, _ in unfinished)
        logger.warning(
            "raincheck: %d job(s) did not finish within the %.1f s shutdown timeout: %s",
            len(unfinished),
            timeout,
            names,
        )


def wait_idle(timeout: float | None = None) -> bool:
    pool = _pool
    if pool is None or pool.pid != os.getpid():
        return True
    return pool.wait_idle(timeout)


_exit_waiters: list[Callable[[float], None]] = []


def before_exit_drain(waiter: Callable[[float], None]) -> None:
    """Have the exit drain first call ``waiter(deadline)`` (a ``time.monotonic()``)."""
    _exit_waiters.append(waiter)


def drain_for_exit() -> None:
    """Drain for good: the process is about to end, later jobs run in the caller.

    One deadline, ``RAINCHECK_SHUTDOWN_TIMEOUT``, covers waiting for requests
    still running (see ``raincheck.buffers.wait_for_requests``) and the drain.
    """
    global _exiting
    try:
        timeout = conf.get().shutdown_timeout
        deadline = time.monotonic() + timeout
        # An event loop in this thread (uvicorn's, when SIGTERM arrives) cannot
        # finish its requests while we wait: its server does that after us.
        if asyncio._get_running_loop() is None:
            for wait in _exit_waiters:
                wait(deadline)
        _exiting = True
        shutdown(max(0.0, deadline - time.monotonic()))
    except Exception:
        _exiting = True
        logger.exception("raincheck: draining the pool at exit failed")


def _forget_parent_pool() -> None:
    # os.fork() children (gunicorn, multiprocessing) start clean; uWSGI's C fork
    # does not call this, which is why every use also compares pids.
    global _pool, _exiting
    _pool = None
    _exiting = False
    _process_counters()


# atexit hooks run after the interpreter has joined non-daemon threads, so every
# request thread has handed off its jobs by then; our daemon workers still run.
atexit.register(drain_for_exit)
os.register_at_fork(after_in_child=_forget_parent_pool)
