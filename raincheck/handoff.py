"""The hand-off: jobs whose request has ended, or that had none, go to the pool.

What does not fit in the pool's queue is run here, in the caller, or dropped,
as ``RAINCHECK_BACKPRESSURE`` says; with ``RAINCHECK_RUN_ASYNC = False``, and
where no pool can run, every job runs here.
"""

from __future__ import annotations

import logging
import os
import threading

from raincheck import conf, process, signals
from raincheck.backlog import Overflow
from raincheck.jobs import Job, in_job, job_names, run, send_robust
from raincheck.stats import Counters
from raincheck.together import run_together

logger = logging.getLogger("raincheck")


def hand_off(jobs: list[Job]) -> None:
    """Give ``jobs`` to this process's pool, or run them here; never raises for the pool."""
    settings = conf.get()
    if settings.tasks_backend is not None:
        # RAINCHECK_TASKS_ENQUEUE = "request_finished": routed jobs are enqueued on
        # their Tasks backend here, after the pool has the rest, so that they are
        # durable once this returns (docs/scaling.rst, "The durability window").
        here = [job for job in jobs if getattr(job[0], "enqueue_here", False)]
        if here:
            rest = [job for job in jobs if not getattr(job[0], "enqueue_here", False)]
            if rest:
                _hand_off(rest, settings)
            counters = process.current().counters
            counters.add(scheduled=len(here))
            run_in_caller(here, counters)
            return
    _hand_off(jobs, settings)


def _hand_off(jobs: list[Job], settings: conf.Conf) -> None:
    state = process.current()
    counters = state.counters
    awaiting = [job for job in jobs if job[0].is_async] if settings.run_async else None
    if awaiting:
        loop = state.live_loop(settings)
        if loop is not None:
            # Async jobs await on raincheck's event loop, many at once, not
            # one per pool thread (raincheck.loop).
            jobs = [job for job in jobs if not job[0].is_async]
            counters.add(scheduled=len(awaiting))
            rest = loop.put(awaiting, max_queue=settings.max_queue)
            if rest:
                dropping = settings.backpressure in ("drop", "drop_oldest")
                left = Overflow([] if dropping else rest, rest if dropping else [])
                _overflowed(left, settings, counters)
            if not jobs:
                return
    pool = state.live_pool(settings) if settings.run_async else None
    if pool is None:
        ran_in_caller = len(jobs) if settings.run_async else 0
        counters.add(scheduled=len(jobs), ran_in_caller=ran_in_caller)
        run_in_caller(jobs, counters)
        return
    counters.add(scheduled=len(jobs))
    policy = settings.backpressure
    if policy == "block" and in_job():
        # A job, or a thread a job waits on, must never wait for room: only the
        # pool can make room, and it may be waiting for this very thread.
        policy = "caller_runs"
    overflow = pool.put(
        jobs, max_queue=settings.max_queue, policy=policy, block_timeout=settings.block_timeout
    )
    if overflow is not None:
        _overflowed(overflow, settings, counters)


def _overflowed(overflow: Overflow, settings: conf.Conf, counters: Counters) -> None:
    """Report the jobs dropped, and run those the caller must, counting both."""
    dropped, to_run = overflow.dropped, overflow.run_in_caller
    if to_run and process.stop_overdue():
        # The process is stopping and its deadline has passed: running them here
        # would hold its exit (ProcessState.stop_deadline). Dropped and named, as
        # the drain does with the jobs it has no time left for.
        counters.add(dropped=len(to_run))
        logger.warning(
            "raincheck: %d job(s) did not finish within the %.1f s shutdown timeout "
            "(no room in the queue by then): %s",
            len(to_run),
            process.shutdown_timeout(report=False),
            job_names(to_run),
        )
        to_run = []
    counters.add(dropped=len(dropped), ran_in_caller=len(to_run))
    policy = settings.backpressure
    for fn, args, kwargs, _ in dropped:
        logger.warning("raincheck job %s dropped: the queue is full (policy %r)", fn.name, policy)
        send_robust(signals.job_dropped, sender=fn.func, args=args, kwargs=kwargs, reason=policy)
    run_in_caller(_await_together(to_run, counters), counters)


def _await_together(jobs: list[Job], counters: Counters) -> list[Job]:
    """Run the async ones among ``jobs`` at once (raincheck.together); return the rest.

    Not on the main thread, where Ctrl-C arrives: ``run_in_caller()`` stops at
    the job it interrupts and names the rest.
    """
    awaiting = [job for job in jobs if job[0].is_async]
    if len(awaiting) < 2 or threading.current_thread() is threading.main_thread():
        return jobs
    outcomes = run_together(awaiting)
    succeeded = sum(outcomes)
    counters.add(succeeded=succeeded, failed=len(outcomes) - succeeded)
    return [job for job in jobs if not job[0].is_async]


def run_in_caller(jobs: list[Job], counters: Counters) -> None:
    """Run jobs one after another in this thread, counting their outcomes."""
    pid = os.getpid()
    for position, job in enumerate(jobs):
        try:
            ok = run(job)
        except KeyboardInterrupt:
            # Ctrl-C on the main thread (jobs.run has reported the job): stop,
            # and say which jobs will not run rather than lose them silently.
            rest = jobs[position + 1 :]
            counters.add(failed=1, dropped=len(rest))
            if rest:
                names = ", ".join(job[0].name for job in rest)
                logger.warning("raincheck: %d job(s) not run, interrupted: %s", len(rest), names)
            raise
        counters.add(succeeded=1) if ok else counters.add(failed=1)
        if os.getpid() != pid:
            # The job forked, and this is the child: its code decides what the
            # child does next; the parent runs the other jobs.
            return
