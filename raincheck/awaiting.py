"""How an async job is awaited: on which event loop, and with which thread for its sync calls.

Like Django's ASGI handler for a request, each async job gets a thread of its
own for its thread-sensitive ``sync_to_async`` calls (the async ORM's
included): they share it, it is made on the first such call, and the database
connections it opened are closed when the job ends. A job that makes no sync
call makes no thread. On raincheck's event loop that thread is leased
(``raincheck.jobcalls``); elsewhere it is asgiref's.
"""

from __future__ import annotations

import asyncio
import contextvars
import threading
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Final

from asgiref.sync import AsyncToSync, SyncToAsync, ThreadSensitiveContext
from django.db import connections

from raincheck import greenlets

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


class OwnThread:
    """Each job's sync calls on a thread of its own, asgiref's, made on the first.

    ``enter()`` and ``leave()`` as ``raincheck.jobcalls.LoopCalls`` has them, for
    async jobs awaited together outside raincheck's event loop.
    """

    def enter(self) -> tuple[ThreadSensitiveContext, contextvars.Token[Any]]:
        """At a job's start, in its own context (restored by ``leave()``)."""
        context = ThreadSensitiveContext()
        return context, SyncToAsync.thread_sensitive_context.set(context)

    async def leave(self, entered: tuple[ThreadSensitiveContext, contextvars.Token[Any]]) -> None:
        """At the job's end: close the connections its thread opened; end the thread."""
        context, token = entered
        SyncToAsync.thread_sensitive_context.reset(token)
        executor = SyncToAsync.context_to_thread_executor.pop(context, None)
        if executor is not None:
            # Its thread exists: no new thread at interpreter shutdown.
            await asyncio.wrap_future(executor.submit(connections.close_all))
            executor.shutdown(wait=False)


OWN_THREAD: Final = OwnThread()


async def await_job(awaitable: Awaitable[object]) -> None:
    """Await a job's coroutine in a thread-sensitive context of its own (on a pool
    thread, or in a caller; on raincheck's event loop see ``raincheck.jobcalls``)."""
    # Set here rather than with ``async with ThreadSensitiveContext()``, which
    # keeps an enclosing context: a job's context is a copy of its request's.
    entered = OWN_THREAD.enter()
    try:
        await awaitable
    finally:
        await OWN_THREAD.leave(entered)


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
