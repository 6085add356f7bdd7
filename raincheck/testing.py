"""Helpers for testing code that schedules raincheck jobs.

``capture()`` swaps a process-wide switch: it is not meant for tests that run in
parallel threads of one process (pytest-xdist's processes are fine).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import Context
from typing import Any

from raincheck import process
from raincheck.decorators import RaincheckFunction
from raincheck.drain import refuse_inside_a_job
from raincheck.jobs import Job, JobFunction, run
from raincheck.scheduling import start_capture, stop_capture


class CapturedJobs(list[tuple[JobFunction, tuple[Any, ...], dict[str, Any]]]):
    """The jobs recorded by ``capture()``, in the order they were scheduled:
    ``(function, args, kwargs)`` each, ``function`` being the ``@raincheck`` one."""

    def __init__(self) -> None:
        super().__init__()
        # The context each job was scheduled in, where run() runs it.
        self._contexts: list[Context] = []

    def record(self, job: Job) -> None:
        fn, args, kwargs, context = job
        self.append((fn, args, kwargs))
        self._contexts.append(context)

    def run(self) -> None:
        """Run every captured job in this thread, in order; failures are logged."""
        for (fn, args, kwargs), context in zip(self, self._contexts, strict=True):
            run((fn, args, kwargs, context.copy()))

    def calls(self) -> list[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
        """``(original function, args, kwargs)`` for each captured job."""
        return [(fn.func, args, kwargs) for fn, args, kwargs in self]

    def assert_scheduled(self, func: Callable[..., Any], /, *args: Any, **kwargs: Any) -> None:
        """Fail, listing what was scheduled, unless ``func(*args, **kwargs)`` was."""
        target = _original(func)
        if not any(fn.func is target and a == args and k == kwargs for fn, a, k in self):
            raise AssertionError(
                f"{_describe(target, args, kwargs)} was not scheduled; {self._listing()}"
            )

    def assert_not_scheduled(self, func: Callable[..., Any], /) -> None:
        """Fail, listing what was scheduled, if ``func`` was scheduled at all."""
        target = _original(func)
        if any(job[0].func is target for job in self):
            raise AssertionError(f"{_name(target)} was scheduled; {self._listing()}")

    def _listing(self) -> str:
        if not self:
            return "no job was scheduled."
        lines = "\n".join(f"  {_describe(fn.func, a, k)}" for fn, a, k in self)
        return f"scheduled jobs:\n{lines}"


def _original(func: Callable[..., Any]) -> Callable[..., Any]:
    return func.func if isinstance(func, RaincheckFunction) else func


def _name(func: Callable[..., Any]) -> str:
    return f"{func.__module__}.{func.__qualname__}"


def _describe(func: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    arguments = [repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()]
    return f"{_name(func)}({', '.join(arguments)})"


@contextmanager
def capture() -> Iterator[CapturedJobs]:
    """Record scheduled jobs instead of running them, for the duration of the block."""
    jobs = CapturedJobs()
    record = jobs.record  # one bound method, to remove by identity
    start_capture(record)
    try:
        yield jobs
    finally:
        stop_capture(record)


def wait_idle(timeout: float = 5.0) -> None:
    """Block until every handed-off job has finished; ``TimeoutError`` after ``timeout``.

    Called from inside a job it raises ``RuntimeError``, as ``shutdown()`` does.
    """
    refuse_inside_a_job("raincheck.testing.wait_idle()")
    if not process.wait_idle(timeout):
        raise TimeoutError(f"raincheck jobs still running after {timeout} s: {process.stats()}")
