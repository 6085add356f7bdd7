"""How an async job is awaited: on which event loop, and with which thread for its sync calls.

Like Django's ASGI handler for a request, each async job gets its own asgiref
thread-sensitive context: its ``sync_to_async`` calls (the async ORM's
included) share one thread of their own, made on the first such call, whose
database connections are closed when the job ends. A job that makes no sync
call makes no thread.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future, InvalidStateError, ThreadPoolExecutor
from typing import Any, Final

from asgiref.sync import AsyncToSync, SyncToAsync, ThreadSensitiveContext
from django.db import connections

from raincheck import greenlets
from raincheck.seats import Seats

_local = threading.local()


def become_job_thread() -> None:
    """This thread runs only jobs (a pool worker): its async jobs reuse one event
    loop, which ``close_thread_loop()`` ends."""
    _local.keeps_loop = True


def run_to_completion(awaitable: Awaitable[object]) -> None:
    """Await ``awaitable`` from sync code in this thread, as an async job."""
    if greenlets.patched():
        # gevent: a loop run here would be every greenlet's (raincheck.greenlets).
        greenlets.run_coroutine(await_job(awaitable))
    elif getattr(_local, "keeps_loop", False):
        _thread_loop().run_until_complete(await_job(awaitable))
    else:
        # A request thread running a job itself: nothing would close a cached loop.
        _run_in_new_loop(await_job(awaitable))


async def await_job(awaitable: Awaitable[object], seats: Seats | None = None) -> None:
    """Await a job's coroutine in a thread-sensitive context of its own.

    ``seats``: its sync calls' thread is started once it has a seat (on
    raincheck's event loop, whose jobs would otherwise each start one).
    """
    # Set here rather than with ``async with ThreadSensitiveContext()``, which
    # keeps an enclosing context: a job's context is a copy of its request's.
    context = ThreadSensitiveContext()
    token = SyncToAsync.thread_sensitive_context.set(context)
    if seats is not None:
        # asgiref takes the executor it finds for the context, else makes one.
        SyncToAsync.context_to_thread_executor[context] = SeatedThread(seats)  # type: ignore[assignment]
    try:
        await awaitable
    finally:
        SyncToAsync.thread_sensitive_context.reset(token)
        executor = SyncToAsync.context_to_thread_executor.pop(context, None)
        if isinstance(executor, SeatedThread):
            await executor.close()
        elif executor is not None:
            # Its thread exists: no new thread at interpreter shutdown.
            await asyncio.wrap_future(executor.submit(connections.close_all))
            executor.shutdown(wait=False)


class SeatedThread:
    """A job's thread for its sync calls, as asgiref's per-context executor, with a seat.

    Made, with its seat, on the job's first call; until a seat is free the calls
    wait (the loop does not). Its futures are ``concurrent.futures`` ones, as
    ``loop.run_in_executor()`` expects of any executor.
    """

    def __init__(self, seats: Seats) -> None:
        self._seats = seats
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._queued: list[tuple[Future[Any], Callable[..., Any], tuple[Any, ...]]] = []
        self._asked = False  # for a seat
        self._closed = False

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        with self._lock:
            if self._executor is not None:
                return self._executor.submit(fn, *args)
            future: Future[Any] = Future()
            self._queued.append((future, fn, args))
            if self._asked:
                return future
            self._asked = True
        if self._seats.take_or_wait(self._seated):
            self._seated()
        return future

    def _seated(self) -> None:
        # A seat is ours: on the thread that asked, or on the one that gave it back.
        with self._lock:
            closed = self._closed
            if not closed:
                executor = ThreadPoolExecutor(1, thread_name_prefix="raincheck-sync")
                self._executor = executor
                queued, self._queued = self._queued, []
        if closed:
            self._seats.give_back()  # the job ended while it waited
            return
        for future, fn, args in queued:
            try:
                _settle_with(future, executor.submit(fn, *args))
            except RuntimeError as exc:  # no thread to be had (interpreter shutdown)
                future.set_exception(exc)

    async def close(self) -> None:
        """The job has ended: close its thread's connections, give the seat back."""
        with self._lock:
            self._closed = True
            executor, queued, self._queued = self._executor, self._queued, []
        for future, _, _ in queued:  # a drain cancelled the job while they waited
            future.cancel()
        if executor is None:
            if self._asked:
                self._seats.cancel(self._seated)  # else _seated() gives it back
            return
        closed = False
        try:
            # Its thread exists: no new thread at interpreter shutdown.
            await asyncio.wrap_future(executor.submit(connections.close_all))
            closed = True
        finally:
            # With nothing left to run, its thread only has to exit: joined, so
            # that its seat goes to a new thread only once it is gone.
            executor.shutdown(wait=closed)
            self._seats.give_back()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """What asgiref would call on an executor it made; this one closes with its job."""


def _settle_with(future: Future[Any], source: Future[Any]) -> None:
    def copy(done: Future[Any]) -> None:
        # ``future`` may have been cancelled meanwhile (by asyncio, for a cancelled job).
        with contextlib.suppress(InvalidStateError):
            if done.cancelled():
                future.cancel()
            elif (error := done.exception()) is not None:
                future.set_exception(error)
            else:
                future.set_result(done.result())

    source.add_done_callback(copy)


def forget_asgiref_callers() -> None:
    """Forget, in this context, the asgiref executors of the code that made it.

    asgiref keeps them in context variables, so a copied context carries them:
    a ``sync_to_async()`` in a job would then be sent to a thread that is busy
    waiting for the job, or long gone.
    """
    if _carries_an_executor():
        # Set, not deleted: asgiref's Local hides storage made on another thread
        # (so del finds nothing) until asgiref itself moves the context to a new
        # thread, and brings the stale executor back. None replaces all of it.
        AsyncToSync.executors.current = None
    if SyncToAsync.deadlock_context.get(False):
        SyncToAsync.deadlock_context.set(False)


def _local_variable(local: object) -> contextvars.ContextVar[Any] | None:
    # The context variable behind an asgiref Local, where this asgiref has one.
    variable = getattr(getattr(local, "_storage", None), "_data", None)
    return variable if isinstance(variable, contextvars.ContextVar) else None


# Setting an asgiref Local takes a lock shared with every sync_to_async() of the
# process, and copies its storage: about a third of an async job's own cost on
# raincheck's loop. Most contexts carry no executor, which reading shows.
_EXECUTORS: Final = _local_variable(AsyncToSync.executors)


def _carries_an_executor() -> bool:
    if _EXECUTORS is None:
        return True  # an asgiref whose Local is not known: always set
    stored = _EXECUTORS.get(None)
    if stored is None:
        return False
    # asgiref 3.9+ wraps the data with the thread it belongs to; earlier, the dict.
    data = getattr(stored, "data", stored)
    return not isinstance(data, dict) or data.get("current") is not None


def in_helper_thread(target: Callable[[], None]) -> None:
    """Run ``target`` on a new thread, in a copy of this context; re-raise its error.

    For a job that cannot run here: this thread runs an event loop, or serves
    an ``async_to_sync()`` above it.
    """
    error: list[BaseException] = []
    context = contextvars.copy_context()
    context.run(forget_asgiref_callers)

    def run() -> None:
        try:
            context.run(target)
        except BaseException as exc:
            error.append(exc)
        finally:
            close_thread_loop()
            connections.close_all()

    if greenlets.patched():
        # A patched Thread would be a greenlet of this OS thread, and see its loop.
        greenlets.run_in_native_thread(run)
    else:
        helper = threading.Thread(target=run, name="raincheck-caller", daemon=True)
        helper.start()
        helper.join()
    if error:
        raise error[0]


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
