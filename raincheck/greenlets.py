"""What raincheck does differently in a gevent-patched process: async jobs' loops on native threads.

gevent's ``monkey.patch_all()`` (gunicorn ``-k gevent`` calls it before it loads
the app) makes every ``threading.Thread`` a greenlet of one OS thread, while
asyncio keeps one running event loop per OS thread. An async job's loop run in a
pool greenlet would be every greenlet's loop whenever the job awaits: Django
would refuse the other greenlets' ORM work (``SynchronousOnlyOperation``, its
check asks asyncio for a running loop), and a job's ``sync_to_async`` calls,
sent to greenlets of that same OS thread, would be refused too.

So here an async job's event loop runs on a native thread of its own, and the
greenlet that waits for it hands the job's ``sync_to_async`` calls (the async
ORM's included) to greenlets of its own thread, much as asgiref's
``async_to_sync`` has its calling thread run them: no sync code ever shares an
OS thread with a running loop (docs/servers.rst, "gevent"). gevent is imported
only once it has patched ``threading``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import sys
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from asgiref.sync import AsyncToSync

T = TypeVar("T")


def patched() -> bool:
    """Whether gevent has monkey-patched ``threading`` in this process."""
    monkey = sys.modules.get("gevent.monkey")
    return monkey is not None and bool(monkey.is_module_patched("threading"))


class _Done:
    """The native thread's last word: how its function ended."""

    __slots__ = ("error",)

    def __init__(self, error: BaseException | None) -> None:
        self.error = error


class _Caller(ThreadPoolExecutor):
    """An executor for the job's loop that sends each call back to the waiting greenlet.

    A ``ThreadPoolExecutor`` only because ``loop.set_default_executor()`` takes
    nothing else; it starts no thread. ``spawn``: each call gets a greenlet of
    its own (the loop's default executor: ``to_thread``, ``thread_sensitive=False``)
    instead of the job's one greenlet for thread-sensitive calls, which runs
    them one at a time, like the thread of asgiref's ``ThreadSensitiveContext``.
    """

    def __init__(self, send: Callable[[object], None], *, spawn: bool) -> None:
        super().__init__(max_workers=1)
        self._send = send
        self.spawn = spawn

    def submit(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> Future[T]:
        # Called in the loop's thread. The future is only ever touched there, so
        # that no lock (a gevent lock, once patched) is shared between threads.
        future: Future[T] = Future()
        self._send((self, future, asyncio.get_running_loop(), fn, args, kwargs))
        return future

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        pass  # no thread to stop: each call's greenlet ends with the call


def run_coroutine(coroutine: Coroutine[Any, Any, None]) -> None:
    """Run ``coroutine`` on a new event loop in a native thread; its exceptions propagate.

    Meanwhile greenlets of this thread run the ``sync_to_async`` calls that the
    coroutine makes: the thread-sensitive ones all in one greenlet of the job's own.
    """

    def run_loop(send: Callable[[object], None]) -> None:
        # In the native thread: thread-sensitive sync_to_async calls look for the
        # executor of an async_to_sync caller before any ThreadSensitiveContext.
        AsyncToSync.executors.current = _Caller(send, spawn=False)
        loop = asyncio.new_event_loop()
        loop.set_default_executor(_Caller(send, spawn=True))
        try:
            loop.run_until_complete(coroutine)
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            finally:
                loop.close()

    _on_native_thread(run_loop)


def run_in_native_thread(func: Callable[[], None]) -> None:
    """Call ``func`` in a native thread and wait for it; its exceptions propagate.

    For code that must run where no event loop is running: in a greenlet of a
    loop's thread, that loop is visible too.
    """
    _on_native_thread(lambda send: func())


def _on_native_thread(target: Callable[[Callable[[object], None]], None]) -> None:
    # target(send) runs in a new native thread, in a copy of this context; send()
    # hands this greenlet a call to run (see _Caller), which it passes on to a
    # greenlet. Only this greenlet waits: the others of its thread run meanwhile.
    import gevent
    from gevent.monkey import get_original
    from gevent.queue import Queue

    inbox: Any = Queue()
    wake = gevent.get_hub().loop.run_callback_threadsafe

    def send(item: object) -> None:
        wake(inbox.put, item)

    def main() -> None:
        error: BaseException | None = None
        try:
            context.run(target, send)
        except BaseException as exc:
            error = exc
        # The loop's gevent sockets gave this thread a hub of its own (an epoll
        # descriptor and more): a thread that ends must free it, gevent says.
        # Freed before the job counts as done, so nothing of it outlives the job.
        try:
            gevent.get_hub().destroy(destroy_loop=True)
        finally:
            send(_Done(error))

    context = contextvars.copy_context()
    get_original("_thread", "start_new_thread")(main, ())
    calls: Any = Queue()
    serial: Any = None  # the greenlet of the thread-sensitive calls, made for the first
    try:
        while not isinstance(item := inbox.get(), _Done):
            caller, *call = item
            if caller.spawn:
                gevent.spawn(_answer, *call)
                continue
            if serial is None:
                serial = gevent.spawn(_serve, calls)
            calls.put(call)
    finally:
        if serial is not None:
            calls.put(None)
    if serial is not None:
        serial.join()  # the job is done once its last sync call is
    if item.error is not None:
        raise item.error


def _serve(calls: Any) -> None:
    # One greenlet for all of a job's thread-sensitive calls, as the thread of
    # asgiref's ThreadSensitiveContext is elsewhere: they share its database
    # connections (which the job closes as it ends), not the caller's, whose
    # transaction a job run in a view must stay out of.
    for call in iter(calls.get, None):
        _answer(*call)


def _answer(
    future: Future[Any],
    loop: asyncio.AbstractEventLoop,
    fn: Callable[..., Any],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> None:
    # In a greenlet: run the call, then settle its future in the loop's thread.
    try:
        result, error = fn(*args, **kwargs), None
    except BaseException as exc:
        result, error = None, exc
    # A closed loop (RuntimeError): the job ended without waiting for this call.
    with contextlib.suppress(RuntimeError):
        loop.call_soon_threadsafe(_settle, future, result, error)


def _settle(future: Future[Any], result: object, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is None:
        future.set_result(result)
    else:
        future.set_exception(error)
