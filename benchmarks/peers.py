"""Every way of running work after a response that the benchmarks compare.

One peer per process, chosen by the ``BENCH_PEER`` environment variable (see
``project/settings.py``): dj-raincheck and raincheck both hand off at
``request_finished``, so in one process each would run at the other's request
ends. Nothing here connects a receiver until ``active()`` builds the peer.

- ``raincheck``: this library.
- ``dj_raincheck``: dj-raincheck 0.5.0 from PyPI: a global deque, one thread
  per job at ``request_finished``.
- ``tasks_immediate``: Django's own ``django.tasks`` with ``ImmediateBackend``,
  which runs each task inside ``enqueue()``, i.e. before the response.
- ``thread_per_job`` and ``executor_submit``: the two obvious hand-written
  designs, each with a correct per-request buffer: at request end, start one
  ``threading.Thread`` per job, or call ``ThreadPoolExecutor.submit`` per job.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextvars import ContextVar
from typing import Any, Final

from django.core.signals import request_finished, request_started

from benchmarks import jobs

PEER_ENV: Final = "BENCH_PEER"
PEERS: Final = ("raincheck", "dj_raincheck", "tasks_immediate", "thread_per_job", "executor_submit")
# Peers whose request end can run the jobs inline (RAINCHECK_RUN_ASYNC = False).
INLINE_PEERS: Final = ("raincheck", "dj_raincheck")

Schedule = Callable[..., Any]


def peer_name() -> str:
    """This process's peer; ``none`` loads no library (the HTTP baselines)."""
    name = os.environ.get(PEER_ENV, "raincheck")
    if name not in (*PEERS, "none"):
        raise RuntimeError(f"{PEER_ENV}={name!r}: expected none or one of {', '.join(PEERS)}")
    return name


def installed_apps(name: str) -> list[str]:
    """The apps a process of this peer loads: never two that hand off at request end."""
    return {"raincheck": ["raincheck"], "dj_raincheck": ["dj_raincheck"]}.get(name, [])


class Peer:
    """One peer: how to make a function schedulable, and how to wait for its jobs.

    This base class is the ``none`` peer: requests with no library at all.
    """

    name = "none"

    def schedulable(self, func: Callable[..., object]) -> Schedule:
        """The peer's ``func.schedule`` (or equivalent)."""
        raise RuntimeError(f"{PEER_ENV}=none schedules nothing")

    def start_request(self) -> None:
        request_started.send(sender=None, environ={})

    def finish_request(self) -> None:
        request_finished.send(sender=None)

    def discard(self) -> None:
        """Forget the jobs the current request has scheduled, without running them."""

    def wait_done(self, count: int, timeout: float = 60.0) -> None:
        """Wait until ``count`` jobs have appended to ``jobs.DONE``."""
        deadline = time.monotonic() + timeout
        while len(jobs.DONE) < count:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{self.name}: {len(jobs.DONE)} of {count} jobs ran")
            time.sleep(0.0002)


class Raincheck(Peer):
    name = "raincheck"

    def schedulable(self, func: Callable[..., object]) -> Schedule:
        from raincheck import raincheck

        return raincheck(func).schedule

    def discard(self) -> None:
        from raincheck.buffers import current_buffer

        buffer = current_buffer.get()
        if buffer is not None:
            buffer.clear()

    def wait_done(self, count: int, timeout: float = 60.0) -> None:
        from raincheck.testing import wait_idle

        wait_idle(timeout)
        if len(jobs.DONE) < count:
            raise AssertionError(f"wait_idle() returned with {len(jobs.DONE)} of {count} jobs run")


class DjRaincheck(Peer):
    name = "dj_raincheck"

    def schedulable(self, func: Callable[..., object]) -> Schedule:
        from dj_raincheck import raincheck

        schedule: Schedule = raincheck(func).schedule
        return schedule

    def discard(self) -> None:
        from dj_raincheck.store import function_queue

        function_queue.clear()


class TasksImmediate(Peer):
    name = "tasks_immediate"

    def schedulable(self, func: Callable[..., object]) -> Schedule:
        from django.tasks import task

        return task(func).enqueue


class _PerRequestBuffer(Peer):
    """A per-request list in a ContextVar, like raincheck's; subclasses start the jobs."""

    def __init__(self) -> None:
        self.buffer: ContextVar[list[tuple[Callable[..., object], tuple[Any, ...]]] | None] = (
            ContextVar(f"bench_{self.name}", default=None)
        )
        request_started.connect(self._open, dispatch_uid=f"bench.{self.name}.open")
        request_finished.connect(self._close, dispatch_uid=f"bench.{self.name}.close")

    def schedulable(self, func: Callable[..., object]) -> Schedule:
        def schedule(*args: Any) -> None:
            buffer = self.buffer.get()
            if buffer is None:
                self.start([(func, args)])
            else:
                buffer.append((func, args))

        return schedule

    def discard(self) -> None:
        buffer = self.buffer.get()
        if buffer is not None:
            buffer.clear()

    def _open(self, **kwargs: Any) -> None:
        self.buffer.set([])

    def _close(self, **kwargs: Any) -> None:
        buffer = self.buffer.get()
        self.buffer.set(None)
        if buffer:
            self.start(buffer)

    def start(self, batch: list[tuple[Callable[..., object], tuple[Any, ...]]]) -> None:
        raise NotImplementedError


class ThreadPerJob(_PerRequestBuffer):
    name = "thread_per_job"

    def start(self, batch: list[tuple[Callable[..., object], tuple[Any, ...]]]) -> None:
        for func, args in batch:
            threading.Thread(target=func, args=args, daemon=True).start()


class ExecutorSubmit(_PerRequestBuffer):
    name = "executor_submit"

    def __init__(self) -> None:
        super().__init__()
        # The same bound as raincheck's default RAINCHECK_MAX_WORKERS.
        self.executor = ThreadPoolExecutor(thread_name_prefix="bench-executor")

    def start(self, batch: list[tuple[Callable[..., object], tuple[Any, ...]]]) -> None:
        submit = self.executor.submit
        for func, args in batch:
            submit(func, *args)


_PEER_CLASSES: Final[dict[str, type[Peer]]] = {
    cls.name: cls
    for cls in (Peer, Raincheck, DjRaincheck, TasksImmediate, ThreadPerJob, ExecutorSubmit)
}
_active: Peer | None = None


def active() -> Peer:
    """This process's peer (``BENCH_PEER``), built and wired on first use."""
    global _active
    if _active is None:
        _active = _PEER_CLASSES[peer_name()]()
    return _active
