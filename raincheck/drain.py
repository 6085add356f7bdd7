"""Stopping: ``raincheck.shutdown()``, and the drain that runs when the process exits.

The exit drain runs from ``atexit``, from multiprocessing's own exit hook in a
process it started (below), and also from uWSGI's exit hook and the SIGTERM
handler that ``raincheck.apps`` installs (docs/servers.rst). Its steps
run in this order, within one deadline, ``RAINCHECK_SHUTDOWN_TIMEOUT``:

1. hand off the jobs of ASGI requests that will never send ``request_finished``;
2. wait for requests still being served on other threads to hand off theirs;
3. drain the pool; from then on, jobs run in the thread that hands them off.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import multiprocessing
import threading
import time
from multiprocessing import util as multiprocessing_util

from raincheck import buffers, conf, process
from raincheck.jobs import in_job, job_names

logger = logging.getLogger("raincheck")

# Seconds past the deadline after which a drain is reported as held up.
LATE = 1.0


def shutdown(timeout: float | None = None) -> None:
    """Stop the pool: drain it for up to ``timeout`` seconds (default
    ``RAINCHECK_SHUTDOWN_TIMEOUT``) and log the jobs that did not finish.

    Jobs handed off while it drains run in the caller. The next hand-off after
    it returns creates a new pool. Called from inside a job it raises
    ``RuntimeError``: it would wait for that job, which waits for it.
    """
    refuse_inside_a_job("raincheck.shutdown()")
    _drain(timeout)


def refuse_inside_a_job(what: str) -> None:
    if in_job():
        # As ThreadPoolExecutor refuses to join its own thread.
        raise RuntimeError(
            f"{what} cannot be called from inside a raincheck job: it would wait for "
            "that job to finish, and the job is waiting for it."
        )


def _drain(timeout: float | None, setting: float | None = None) -> None:
    """Drain within ``timeout``; ``setting`` is the timeout the warnings name, when
    part of it went by before the drain began (the exit drain's)."""
    state = process.current()
    pool, loop = state.pool, state.loop
    if pool is None and loop is None:
        return
    if timeout is None:
        timeout = conf.get().shutdown_timeout
    said = timeout if setting is None else setting
    started = time.monotonic()
    running = pool.load()[1] if pool is not None else []
    # One deadline for both: the pool's threads and the loop's tasks run meanwhile.
    unfinished = pool.drain(timeout) if pool is not None else []
    cancelled = loop.drain(max(0.0, started + timeout - time.monotonic())) if loop else []
    if state.call_threads is not None:
        state.call_threads.stop_idle()
    state.forget(pool, loop)
    late = time.monotonic() - started - timeout
    if late > LATE:
        # No thread could run at the deadline: a job held the GIL in C code
        # (a long regex, say), which nothing can interrupt (docs/design.rst,
        # "What the drain cannot stop"). Say so now, as soon as anything can.
        logger.warning(
            "raincheck: the drain ended %.1f s after its %.1f s shutdown timeout: a job "
            "kept every other thread from running (C code holding the GIL). Running when "
            "the drain began: %s",
            late,
            said,
            ", ".join(job[0].name for job in running) or "none",
        )
    if unfinished or cancelled:
        parts = [job_names(unfinished)] if unfinished else []
        if cancelled:
            parts.append(f"async jobs cancelled: {job_names(cancelled)}")
        names = "; ".join(parts)
        logger.warning(
            "raincheck: %d job(s) did not finish within the %.1f s shutdown timeout: %s",
            len(unfinished) + len(cancelled),
            said,
            names,
        )


def drain_for_exit() -> None:
    """Drain for good: the process is about to end, later jobs run in the caller.

    Every exit hook calls it; the first call drains. A later call on another
    thread (a SIGTERM handler's drain, while the ``atexit`` drain runs) returns
    only once that drain has ended, so that the signal it then hands on does not
    end the process in the middle of it.
    """
    state = process.current()
    me = threading.get_ident()
    with state.lock:
        drainer = state.exit_drainer
        if drainer is None:
            state.exit_drainer = me
    if drainer is None:
        try:
            _drain_for_exit(state)
        finally:
            state.exit_drained.set()
    elif drainer != me:
        deadline = state.exit_deadline
        late = None if deadline is None else deadline + EXIT_WAIT_MARGIN - time.monotonic()
        state.exit_drained.wait(None if late is None else max(0.0, late))


# How long past the exit drain's deadline a second exit hook waits for it: the
# event loop gives the jobs it cancelled a second to end (raincheck.loop), and a
# late drain is reported (LATE) before it returns.
EXIT_WAIT_MARGIN = 5.0


def exit_drain_running_here() -> bool:
    """Whether this thread is in the middle of the exit drain (a SIGTERM handler
    asks: the signal must not end the process before the drain has)."""
    state = process.current()
    return state.exit_drainer == threading.get_ident() and not state.exit_drained.is_set()


def _drain_for_exit(state: process.ProcessState) -> None:
    if state.pool is None and state.loop is None and not buffers.requests_in_flight():
        # Nothing was ever handed off (or it all drained already): nothing to
        # wait for, and no reason to read settings that may not be configured.
        state.exiting = True
        return
    # From the stop signal, if the server's handler passed one on (ProcessState.stop_deadline).
    began = state.stop_signalled if state.stop_signalled is not None else time.monotonic()
    timeout = process.shutdown_timeout()
    deadline = state.exit_deadline = began + timeout
    try:
        buffers.hand_off_abandoned()
        # An event loop in this thread (uvicorn's, when SIGTERM arrives) cannot
        # finish its requests while we wait: its server does that after us.
        if asyncio._get_running_loop() is None:
            buffers.wait_for_requests(deadline)
    except Exception:
        logger.exception("raincheck: handing off the last requests' jobs at exit failed")
    finally:
        state.exiting = True
    # Not shutdown(): a SIGTERM may arrive while this thread runs a job.
    _drain(max(0.0, deadline - time.monotonic()), setting=timeout)


atexit.register(drain_for_exit)

# Before any other of multiprocessing's exit finalizers (its queues' feeder
# threads, its pools): the jobs may still use them.
MULTIPROCESSING_EXIT_PRIORITY = 1_000


def _drain_at_multiprocessing_exit(_: object = None) -> None:
    """In a process that ``multiprocessing`` started, drain at its exit as well.

    A child started with the ``fork`` method (granian's workers) ends with
    ``os._exit()`` once its target returns, so ``atexit`` hooks never run there
    (on Python 3.13 those it inherited are cleared as it starts); multiprocessing's
    own exit function does run, and calls the finalizers registered with
    ``multiprocessing.util.Finalize`` (CPython's Lib/multiprocessing/process.py,
    ``BaseProcess._bootstrap``). billiard, the fork of multiprocessing behind
    Celery's prefork pool, starts and ends its children the same way, with
    multiprocessing's own finalizers. A child that runs both hooks (``spawn``)
    drains once.
    """
    multiprocessing_util.Finalize(None, drain_for_exit, exitpriority=MULTIPROCESSING_EXIT_PRIORITY)


# A spawned child imports raincheck after it started. A forked one inherits this
# module, but multiprocessing (or billiard) empties the finalizers as the child
# starts, then calls the functions registered to run after its fork: only there.
if multiprocessing.parent_process() is not None:
    _drain_at_multiprocessing_exit()
multiprocessing_util.register_after_fork(drain_for_exit, _drain_at_multiprocessing_exit)
