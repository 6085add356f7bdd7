"""What a job is, and how one runs: in its own context, awaited if async, failures reported.

A job is a plain ``(function, args, kwargs, context)`` tuple: ``schedule()`` is
on every request's hot path, and a tuple is the cheapest record Python can
build. ``context`` is a copy of the ``contextvars`` context in which the job was
scheduled: the job runs inside it (docs/usage.rst, "Context").
"""

from __future__ import annotations

import asyncio
import contextvars
import inspect
import logging
import threading
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, Protocol

from asgiref.sync import AsyncToSync
from django.dispatch import Signal

from raincheck import conf, greenlets, signals
from raincheck.awaiting import (
    forget_asgiref_callers,
    in_helper_thread,
    run_to_completion,
)

logger = logging.getLogger("raincheck")


class JobFunction(Protocol):
    """What the runtime needs of a scheduled function (``RaincheckFunction`` has it)."""

    @property
    def func(self) -> Callable[..., Any]: ...

    @property
    def name(self) -> str: ...

    @property
    def is_async(self) -> bool: ...

    @property
    def on_success(self) -> bool: ...

    @property
    def routable(self) -> bool:
        """Whether ``RAINCHECK_TASKS_BACKEND`` may send it to a Tasks backend."""


Job = tuple[JobFunction, tuple[Any, ...], dict[str, Any], contextvars.Context]


class JobCalls(Protocol):
    """Where an awaited job's sync calls go: ``raincheck.jobcalls.LoopCalls`` on
    raincheck's event loop, ``raincheck.awaiting.OwnThread`` elsewhere."""

    def enter(self) -> Any:
        """At the job's start, in its task's context; what ``leave()`` is given."""

    async def leave(self, entered: Any, /) -> None:
        """At the job's end, cancelled too."""


def job_names(jobs: list[Job]) -> str:
    """Each job's name once, in order, with how many there were when more than one
    (a backlog of thousands is a few names in a log line, not thousands)."""
    counts = Counter(job[0].name for job in jobs)
    return ", ".join(name if n == 1 else f"{name} (x{n})" for name, n in counts.items())


# The job this context runs: set in the job's own context, and so seen by the
# threads and event-loop tasks it waits on (asgiref's sync_to_async copies the
# context). None outside a job.
_current_job: ContextVar[JobFunction | None] = ContextVar("raincheck_current_job", default=None)


# The jobs the pool's workers run, by thread id (the pool's own dict). A
# worker's sync job is found there rather than in the context variable: the
# first set() in a fresh context copies it, which costs more than a trivial job.
_on_workers: dict[int, Job] = {}


def find_jobs_of_workers(running: dict[int, Job]) -> None:
    """Where ``current_job()`` looks for the job of a pool worker (a new pool's dict)."""
    global _on_workers
    _on_workers = running


def current_job() -> JobFunction | None:
    """The job this code runs in (or a thread a job waits on runs for), else None."""
    fn = _current_job.get()
    if fn is None:
        job = _on_workers.get(threading.get_ident())
        return None if job is None else job[0]
    return fn


def in_job() -> bool:
    """Whether this code runs inside a job, or in something a job waits on.

    Such a thread must never wait for room in the pool's queue, nor for the
    pool to be idle: the pool may be waiting on it.
    """
    return current_job() is not None


def run(job: Job, *, on_worker: bool = False) -> bool:
    """Run one job; log and signal a failure instead of raising. True on success.

    Every exception a job raises, ``BaseException`` subclasses included, is a
    failure of that job: logged with its name, sent as ``job_failed``, counted.
    The one exception is ``KeyboardInterrupt`` on the main thread, which is
    also how Ctrl-C reaches the process: it is reported like the others, then
    raised, so that it still stops the process (docs/usage.rst, "Errors").

    ``on_worker``: this is a pool thread, which never runs an event loop.
    """
    # Its own copy, entered here: whatever the job sets stays in it, so nothing
    # leaks into the request, another job or the thread that runs it.
    ok: bool = job[3].run(run_in_context, job, on_worker)
    return ok


def run_in_context(job: Job, on_worker: bool) -> bool:
    """The body of ``run()``, for a caller that has entered the job's context."""
    fn, args, kwargs, _ = job
    sync_on_worker = on_worker and not fn.is_async
    if not sync_on_worker:
        # Threads and tasks it waits on copy this context, and see it there.
        _current_job.set(fn)  # no reset: this context is the job's own
    if fn.is_async:
        forget_asgiref_callers()
    # _begin(job), inline: this runs once per job, and a call costs as much as a trivial job.
    if signals.job_started.receivers:
        send_robust(signals.job_started, sender=fn.func, args=args, kwargs=kwargs)
    threshold = conf.get().slow_job_warning
    timed = threshold is not None or signals.job_finished.receivers
    started = time.perf_counter() if timed else None
    try:
        if sync_on_worker:
            returned = fn.func(*args, **kwargs)
            if returned is not None:
                _finish(fn, returned)
        else:
            call(job)
    except BaseException as exc:
        report_failure(job, exc)
        if (
            isinstance(exc, KeyboardInterrupt)
            and threading.current_thread() is threading.main_thread()
        ):
            raise
        return False
    if started is not None:
        _report_success(job, threshold, started)
    return True


async def run_async(job: Job, stopped: Callable[[], bool], calls: JobCalls) -> bool | None:
    """``run()`` for an async job on raincheck's event loop (``raincheck.loop``),
    or awaited with others by a caller (``raincheck.together``).

    Awaited in a task made in the job's context, so nothing here enters it.
    None: the drain cancelled it at its deadline (``stopped()`` says so), which
    is not the job's failure: the drain names it, and it counts as dropped.
    ``calls``: where its sync calls go (``JobCalls``).
    """
    fn, args, kwargs, _ = job
    _current_job.set(fn)
    forget_asgiref_callers()
    threshold, started = _begin(job)
    its_calls = calls.enter()
    try:
        try:
            await fn.func(*args, **kwargs)
        finally:
            await calls.leave(its_calls)
    except asyncio.CancelledError as exc:
        if stopped():
            return None
        report_failure(job, exc)  # the job's own: it cancelled something it awaited
        return False
    except BaseException as exc:
        report_failure(job, exc)
        return False
    if started is not None:
        _report_success(job, threshold, started)
    return True


def _begin(job: Job) -> tuple[float | None, float | None]:
    """Send ``job_started``; the slow-job threshold, and the start time if anyone reads it."""
    fn, args, kwargs, _ = job
    # This runs once per job: signals nobody listens to and a clock nobody reads
    # are skipped (each would cost about as much as a trivial job).
    if signals.job_started.receivers:
        send_robust(signals.job_started, sender=fn.func, args=args, kwargs=kwargs)
    threshold = conf.get().slow_job_warning
    timed = threshold is not None or bool(signals.job_finished.receivers)
    return threshold, (time.perf_counter() if timed else None)


def report_failure(job: Job, exc: BaseException) -> None:
    fn, args, kwargs, _ = job
    # SystemExit too: a job calling sys.exit() must not stop a worker or a server.
    logger.error("raincheck job %s failed", fn.name, exc_info=exc)
    send_robust(signals.job_failed, sender=fn.func, args=args, kwargs=kwargs, exception=exc)


def _report_success(job: Job, threshold: float | None, started: float) -> None:
    fn, args, kwargs, _ = job
    duration = time.perf_counter() - started
    if threshold is not None and duration > threshold:
        logger.warning(
            "raincheck job %s took %.3f s (RAINCHECK_SLOW_JOB_WARNING is %s s)",
            fn.name,
            duration,
            threshold,
        )
    send_robust(signals.job_finished, sender=fn.func, args=args, kwargs=kwargs, duration=duration)


def send_robust(signal: Signal, **kwargs: Any) -> None:
    # A failing receiver is logged, never raised: it must not fail the job, the
    # worker, or (for jobs run in the caller) the request's end.
    if not signal.receivers:
        return
    for receiver, result in signal.send_robust(**kwargs):
        if isinstance(result, Exception):
            logger.error("raincheck: receiver %r of a job signal failed", receiver, exc_info=result)


def call(job: Job) -> None:
    """Call a job's function in this thread, awaited if async; its exceptions propagate."""
    fn, args, kwargs, _ = job
    if fn.is_async:
        await_here(lambda: fn.func(*args, **kwargs))
    elif asyncio._get_running_loop() is not None:
        # An event loop runs in this thread (an async caller running a job
        # itself): blocking it with sync code is not allowed.
        in_helper_thread(lambda: call(job))
    else:
        returned = fn.func(*args, **kwargs)
        if returned is not None:
            _finish(fn, returned)


def await_here(make: Callable[[], Awaitable[object]]) -> None:
    """Await what ``make()`` returns, to its end, from sync code in this thread."""
    if greenlets.patched():
        # gevent: its loop runs on a native thread of its own whatever this OS
        # thread runs (raincheck.greenlets). A helper thread would nest a
        # second native thread, with no greenlet of its own to serve it.
        run_to_completion(make())
    elif asyncio._get_running_loop() is not None or (
        getattr(AsyncToSync.executors, "current", None) is not None
    ):
        # An event loop runs in this thread: nesting a loop is not allowed. Or
        # this thread serves an async_to_sync() above it (Django's async tests,
        # a sync view under ASGI): asgiref would send the job's sync_to_async()
        # calls back to this very thread, which is busy running the job.
        in_helper_thread(lambda: run_to_completion(make()))
    else:
        run_to_completion(make())


def _finish(fn: JobFunction, returned: object) -> None:
    """Deal with what a sync function returned: a coroutine is the job's real body."""
    if inspect.isawaitable(returned):
        # A partial of an async function, or a callable object whose __call__ is
        # async, is not detected as async when decorated.
        run_to_completion(returned)
    elif inspect.isgenerator(returned) or inspect.isasyncgen(returned):
        raise TypeError(
            f"{fn.name} returned a generator, so its body never ran: raincheck calls a "
            "job's function and does not iterate what it returns. Make it a plain function."
        )
