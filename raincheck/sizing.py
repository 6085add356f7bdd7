"""How many threads the pool may run: enough for waiting jobs, never more than help.

Under the GIL only one thread runs Python code at a time. Jobs that wait (on a
socket, a disk, a lock) leave it free, so more threads finish more of them;
jobs that compute do not, and more threads only add switching. So the pool
starts threads only for jobs that wait with no thread idle, up to a target of
``CORE_THREADS``; it doubles the target when a worker finishes a slow step
(``SLOW_STEP``) with jobs still waiting, while its threads together use less
than ``SATURATED`` of one CPU (``time.thread_time()`` over the last ``WINDOW``
seconds). An idle thread retires after ``KEEP_ALIVE`` seconds.
``RAINCHECK_MAX_WORKERS`` is the hard cap (docs/design.rst, "An elastic pool").
"""

from __future__ import annotations

import time
from typing import Final

# Threads that stay when idle (until the pool closes): the next job needs no start.
MIN_THREADS: Final = 1
# Threads started at once for waiting jobs, before any job has shown it waits.
CORE_THREADS: Final = 4
# Seconds a thread may stay idle before it retires.
KEEP_ALIVE: Final = 30.0
# The share of one CPU above which the pool's threads are bound by computing.
SATURATED: Final = 0.7
WINDOW: Final = 0.1
# A worker's step (one job, or a batch) slower than this (seconds) lets it start
# another thread when jobs are still waiting and none is idle.
SLOW_STEP: Final = 0.002


class CpuClock:
    """One worker's CPU time, read at most once a ``WINDOW``: reading it is a system call."""

    __slots__ = ("_at", "_since")

    def __init__(self, now: float) -> None:
        self._at = time.thread_time()
        self._since = now

    def used(self, now: float) -> float:
        """CPU seconds this thread used since the last reading, or 0.0 if too soon to read."""
        if now - self._since < WINDOW:
            return 0.0
        cpu = time.thread_time()
        used, self._at, self._since = cpu - self._at, cpu, now
        return used


class ThreadBudget:
    """How many threads the pool may start for waiting jobs (called with its lock held)."""

    __slots__ = ("_cpu", "_since", "cpu_rate", "target")

    def __init__(self, cap: int, now: float) -> None:
        self.target = min(CORE_THREADS, cap)
        self._cpu = 0.0
        self._since = now
        self.cpu_rate = 0.0  # the pool's threads' CPU use lately, as a share of one CPU

    def step_done(self, wall: float, cpu: float, now: float, jobs_wait: bool, cap: int) -> bool:
        """A worker's step took ``wall`` seconds, ``cpu`` of them on the CPU; whether
        the target grew (jobs wait behind slow ones, and threads wait more than compute)."""
        self._cpu += cpu
        elapsed = now - self._since
        if elapsed >= WINDOW:
            self.cpu_rate = self._cpu / elapsed
            self._cpu = 0.0
            self._since = now
        if wall > SLOW_STEP and jobs_wait and self.cpu_rate < SATURATED and self.target < cap:
            self.target = min(cap, 2 * self.target)
            return True
        return False

    def resized(self, cap: int, threads: int) -> None:
        """The cap changed, or a thread retired: back towards ``CORE_THREADS``."""
        self.target = max(min(CORE_THREADS, cap), min(threads, cap))
