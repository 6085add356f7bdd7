"""The sync calls of async jobs on raincheck's event loop: each job's own thread, leased.

Django's ASGI handler gives each request a thread for its thread-sensitive
``sync_to_async`` calls (the async ORM's), so that they share its database
connections. An async job on ``raincheck-loop`` gets the same: a thread made on
its first such call, leased from ``raincheck.callthreads`` (within
``RAINCHECK_MAX_WORKERS``), whose connections are closed at the job's end
before it goes back. A job that makes no sync call makes no thread, and costs
two context variables.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final

from asgiref.sync import SyncToAsync, ThreadSensitiveContext
from django.db import connections

from raincheck.callthreads import Call, CallThread, CallThreads


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
        # this call alone, still within the cap, closed at once: it goes back
        # after the call, now if it has its thread, else once granted.
        alone = JobThread(self.threads)
        future = alone.submit(fn, *args)
        thread = alone.close()
        if thread is not None:
            give_back_after_calls(self.threads, thread)
        return future

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
                give_back_after_calls(self.threads, thread)
            else:
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


def give_back_after_calls(threads: CallThreads, thread: CallThread) -> None:
    """Give ``thread`` back once the calls already put to it have run and it has
    closed their connections. Given back from that thread, so that nobody waits
    for it (leaving for the pool joins a thread: on the event loop, that would
    block every job)."""
    closed = thread.submit(connections.close_all)
    closed.add_done_callback(lambda _: threads.give_back(thread))
