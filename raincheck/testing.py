"""Helpers for testing code that schedules raincheck jobs.

``capture()`` swaps a process-wide switch: it is not meant for tests that run in
parallel threads of one process (pytest-xdist's processes are fine).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from raincheck import scheduling
from raincheck.jobs import Job, run


class CapturedJobs(list[Job]):
    """The jobs recorded by ``capture()``, in the order they were scheduled."""

    def run(self) -> None:
        """Run every captured job in this thread, in order; failures are logged."""
        for job in self:
            run(job)

    def calls(self) -> list[tuple[Any, tuple[Any, ...], dict[str, Any]]]:
        """``(original function, args, kwargs)`` for each captured job."""
        return [(fn.func, args, kwargs) for fn, args, kwargs in self]


@contextmanager
def capture() -> Iterator[CapturedJobs]:
    """Record scheduled jobs instead of running them, for the duration of the block."""
    jobs = CapturedJobs()
    scheduling.route.capture.append(jobs)
    scheduling.route.slow = True
    try:
        yield jobs
    finally:
        stack = scheduling.route.capture
        # By identity: two empty captures compare equal.
        del stack[next(i for i in reversed(range(len(stack))) if stack[i] is jobs)]
        scheduling.route.slow = True


def wait_idle(timeout: float = 5.0) -> None:
    """Block until every handed-off job has finished; ``TimeoutError`` after ``timeout``."""
    if not scheduling.wait_idle(timeout):
        raise TimeoutError(f"raincheck jobs still running after {timeout} s: {scheduling.stats()}")
