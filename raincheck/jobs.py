"""What a job is, and how one runs: logging, signals and database hygiene.

A job is a plain ``(function, args, kwargs)`` tuple: ``schedule()`` is on every
request's hot path, and a tuple is the cheapest record Python can build.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from asgiref.sync import ThreadSensitiveContext, sync_to_async
from django.db import close_old_connections, connections
from django.db.backends.signals import connection_created
from django.dispatch import Signal

from raincheck import conf, signals

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


Job = tuple[JobFunction, tuple[Any, ...], dict[str, Any]]


def run(job: Job, *, on_worker: bool = False) -> bool:
    """Run one job; log and signal a failure instead of raising. True on success.

    ``on_worker``: this is a pool thread, which never runs an event loop.
    """
    fn, args, kwargs = job
    func = fn.func
    # This runs once per job: signals nobody listens to and a clock nobody reads
    # are skipped (each would cost about as much as a trivial job).
    if signals.job_started.receivers:
        send_robust(signals.job_started, sender=func, args=args, kwargs=kwargs)
    threshold = conf.get().slow_job_warning
    timed = threshold is not None or bool(signals.job_finished.receivers)
    started = time.perf_counter() if timed else 0.0
    try:
        if on_worker and not fn.is_async:
            func(*args, **kwargs)
        else:
            call(fn, args, kwargs)
    except (Exception, SystemExit) as exc:
        # SystemExit too: a job calling sys.exit() must not stop a worker or a server.
        logger.error("raincheck job %s failed", fn.name, exc_info=True)
        send_robust(signals.job_failed, sender=func, args=args, kwargs=kwargs, exception=exc)
        return False
    if timed:
        duration = time.perf_counter() - started
        if threshold is not None and duration > threshold:
            logger.warning(
                "raincheck job %s took %.3f s (RAINCHECK_SLOW_JOB_WARNING is %s s)",
                fn.name,
                duration,
                threshold,
            )
        send_robust(signals.job_finished, sender=func, args=args, kwargs=kwargs, duration=duration)
    return True


def send_robust(signal: Signal, **kwargs: Any) -> None:
    # A failing receiver is logged, never raised: it must not fail the job, the
    # worker, or (for jobs run in the caller) the request's end.
    if not signal.receivers:
        return
    for receiver, result in signal.send_robust(**kwargs):
        if isinstance(result, Exception):
            logger.error("raincheck: receiver %r of a job signal failed", receiver, exc_info=result)


def run_in_worker(job: Job) -> bool:
    """Run a job on a pool thread, treating it like Django treats a request."""
    # Django closes broken or expired connections at request start and end;
    # pool threads never see those signals, so they do it around each job.
    # Only a thread that has opened a connection can have one to close; asking
    # Django costs more than a trivial job, so threads that never did skip it.
    state = _local.__dict__  # this thread's: a dict lookup is cheaper than getattr()
    if "keeps_loop" not in state:
        _local.keeps_loop = True  # closed by close_thread_loop() when the worker stops
    has_db = state.get("has_db", False)
    if has_db:
        close_old_connections()
    try:
        return run(job, on_worker=True)
    finally:
        if has_db or state.get("has_db", False):
            close_old_connections()


def _note_connection(**kwargs: Any) -> None:
    # connection_created is sent in the thread that opened the connection.
    _local.has_db = True


connection_created.connect(_note_connection, dispatch_uid="raincheck.note_connection")


def close_worker_connections() -> None:
    """Close every connection this thread opened (a worker is stopping)."""
    connections.close_all()


def call(fn: JobFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    """Call a job's function in this thread; await it to completion if it is async."""
    if asyncio._get_running_loop() is not None:
        # An event loop runs in this thread (an async caller running a job itself):
        # blocking it with sync code, or nesting a loop, is not allowed.
        _call_in_helper_thread(fn, args, kwargs)
    elif fn.is_async:
        if getattr(_local, "keeps_loop", False):
            _thread_loop().run_until_complete(_await_job(fn.func, args, kwargs))
        else:
            # A request thread running a job itself: nothing would close a cached loop.
            _run_in_new_loop(_await_job(fn.func, args, kwargs))
    else:
        fn.func(*args, **kwargs)


async def _await_job(
    func: Callable[..., Awaitable[object]], args: tuple[Any, ...], kwargs: dict[str, Any]
) -> None:
    # Like Django's ASGI handler does per request: the job's sync_to_async calls
    # (the async ORM included) share one thread of their own, whose database
    # connections are closed when the job ends rather than left open in
    # asgiref's process-wide executor.
    async with ThreadSensitiveContext():
        try:
            await func(*args, **kwargs)
        finally:
            await sync_to_async(connections.close_all)()


_local = threading.local()


def _thread_loop() -> asyncio.AbstractEventLoop:
    # One event loop per thread, reused for every async job: creating a loop per
    # job (asyncio.run) costs more than most jobs.
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is None or loop.is_closed():
        loop = asyncio.new_event_loop()
        _local.loop = loop
    return loop


def _run_in_new_loop(coroutine: Coroutine[Any, Any, None]) -> None:
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(coroutine)
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def close_thread_loop() -> None:
    loop: asyncio.AbstractEventLoop | None = getattr(_local, "loop", None)
    if loop is not None and not loop.is_closed():
        loop.close()


def _call_in_helper_thread(fn: JobFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    error: list[BaseException] = []

    def target() -> None:
        try:
            call(fn, args, kwargs)
        except BaseException as exc:
            error.append(exc)
        finally:
            close_thread_loop()
            connections.close_all()

    helper = threading.Thread(target=target, name="raincheck-caller", daemon=True)
    helper.start()
    helper.join()
    if error:
        raise error[0]
