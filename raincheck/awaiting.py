"""How an async job is awaited: on which event loop, and with which thread for its sync calls.

Like Django's ASGI handler for a request, each async job gets a thread of its
own for its thread-sensitive ``sync_to_async`` calls (the async ORM's
included): they share it, it is made on the first such call, and the database
connections it opened are closed when the job ends. A job that makes no sync
call makes no thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from concurrent.futures import Future
from typing import Any, Final

from asgiref.sync import AsyncToSync, SyncToAsync, ThreadSensitiveContext
from django.db import connections

from raincheck import greenlets
from raincheck.callthreads import Call, CallThread, CallThreads

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


async def await_job(awaitable: Awaitable[object]) -> None:
    """Await a job's coroutine in a thread-sensitive context of its own (on a pool
    thread, or in a caller; on raincheck's event loop see ``LoopCalls``)."""
    # Set here rather than with ``async with ThreadSensitiveContext()``, which
    # keeps an enclosing context: a job's context is a copy of its request's.
    context = ThreadSensitiveContext()
    token = SyncToAsync.thread_sensitive_context.set(context)
    try:
        await awaitable
    finally:
        SyncToAsync.thread_sensitive_context.reset(token)
        executor = SyncToAsync.context_to_thread_executor.pop(context, None)
        if executor is not None:
            # Its thread exists: no new thread at interpreter shutdown.
            await asyncio.wrap_future(executor.submit(connections.close_all))
            executor.shutdown(wait=False)


class CallsOfJob:
    """One job's sync calls on raincheck's event loop: its thread, once it has one."""

    __slots__ = ("ended", "thread")

    def __init__(self) -> None:
        self.thread: JobThread | None = None
        self.ended = False


_calls_of_job: Final[contextvars.ContextVar[CallsOfJob]] = contextvars.ContextVar(
    "raincheck_calls_of_job"
)


class LoopCalls:
    """Where asgiref sends the thread-sensitive sync calls of the jobs on
    raincheck's event loop: on to each job's own ``JobThread``.

    The jobs share one ``ThreadSensitiveContext``, registered once with this
    object as its executor; each call goes to its job's thread, made on the
    job's first call. A job that makes none (most) costs two context
    variables, where a context and an executor of its own cost several times
    a bare task.
    """

    def __init__(self, threads: CallThreads) -> None:
        self.threads = threads
        self.context = ThreadSensitiveContext()
        SyncToAsync.context_to_thread_executor[self.context] = self  # type: ignore[assignment]
        # A job's calls normally come from the loop's thread, but its context may
        # be copied to another thread's loop: its thread is made, and its end
        # seen, under this lock (a second thread made would hold a seat for ever).
        self._lock = threading.Lock()

    def enter(self) -> CallsOfJob:
        """At a job's start, in its task's own context."""
        SyncToAsync.thread_sensitive_context.set(self.context)
        calls = CallsOfJob()
        _calls_of_job.set(calls)
        return calls

    async def leave(self, calls: CallsOfJob) -> None:
        """At the job's end (cancelled too): close its connections on its thread, give it back."""
        with self._lock:
            calls.ended = True
            job_thread = calls.thread
        if job_thread is None:
            return
        thread = job_thread.close()
        if thread is not None:
            try:
                await asyncio.wrap_future(thread.submit(connections.close_all))
            finally:
                self.threads.give_back(thread)

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        # In the calling task's context (a copy of its job's).
        calls = _calls_of_job.get()
        with self._lock:
            job_thread = calls.thread
            if job_thread is None and not calls.ended:
                job_thread = calls.thread = JobThread(self.threads)
        if job_thread is not None and not calls.ended:
            return job_thread.submit(fn, *args)
        # From a task the job left running: its thread has gone back. One for
        # this call alone, still within the cap.
        alone = JobThread(self.threads)
        future = alone.submit(fn, *args)
        future.add_done_callback(lambda _: self._give_back(alone))
        return future

    def _give_back(self, alone: JobThread) -> None:
        thread = alone.close()
        if thread is not None:
            thread.submit(connections.close_all)  # before the next lessee's calls
            self.threads.give_back(thread)

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """What asgiref would call on an executor it made; each job's closes with it."""


class JobThread:
    """A job's executor for its thread-sensitive sync calls (``LoopCalls`` makes it
    on the first): a call thread, leased then and given back at the job's end.

    Until a thread is free the calls wait (the loop does not). Its futures are
    ``concurrent.futures`` ones, as ``loop.run_in_executor()`` expects.
    """

    __slots__ = ("_asked", "_closed", "_lock", "_queued", "_refused", "_thread", "threads")

    def __init__(self, threads: CallThreads) -> None:
        self.threads = threads
        self._lock = threading.Lock()
        self._thread: CallThread | None = None
        self._queued: list[Call] = []
        self._asked = False  # for a thread
        self._closed = False
        self._refused: RuntimeError | None = None  # no thread could start

    def submit(self, fn: Callable[..., Any], /, *args: Any) -> Future[Any]:
        future: Future[Any] = Future()
        with self._lock:
            if self._thread is not None:
                self._thread.put((future, fn, args))
                return future
            if self._refused is not None:
                future.set_exception(self._refused)
                return future
            self._queued.append((future, fn, args))
            if self._asked:
                return future
            self._asked = True
        self.threads.lease(self._granted)
        return future

    def _granted(self, thread: CallThread | None) -> None:
        # On the thread that asked, or on the one that freed a thread or a seat.
        with self._lock:
            if thread is None:
                self._refused = refused = RuntimeError(
                    "no thread for the sync calls of an async job: the interpreter is "
                    "shutting down and starts none (raincheck.callthreads)"
                )
            self._thread = thread
            queued, self._queued = self._queued, []
            closed = self._closed
        for call in queued:
            if thread is None:
                call[0].set_exception(refused)
            else:
                thread.put(call)
        if closed and thread is not None:
            # The job ended while it waited; what waited with it came from tasks
            # it left running. They run, then the thread goes back.
            if queued:
                thread.submit(connections.close_all)
            self.threads.give_back(thread)

    def close(self) -> CallThread | None:
        """The job has ended: its thread, if it had one, to close its connections
        on and give back. Calls still waiting for one (from tasks the job left
        running; a cancelled job's own are cancelled with it) get it when it
        comes, and it goes back after them."""
        with self._lock:
            self._closed = True
            thread = self._thread
            self._queued = [call for call in self._queued if not call[0].cancelled()]
            waiting = bool(self._queued)
        if thread is None and self._asked and not waiting:
            self.threads.cancel(self._granted)  # else _granted() gives it back
        return thread

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """What asgiref would call on an executor it made; this one closes with its job."""


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
