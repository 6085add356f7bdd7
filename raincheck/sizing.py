"""How many threads the pool may run: enough for waiting jobs, never more than help.

Under the GIL only one thread runs Python code at a time. Jobs that wait (on a
socket, a disk, a lock) leave it free, so more threads finish more of them;
jobs that compute do not, and more threads only add switching. Which kind the
jobs are shows in one place: whether more threads finish more jobs. So the
pool starts threads only for jobs that wait with no thread idle, up to a
target of ``CORE_THREADS``. When a worker finishes a slow step (``SLOW_STEP``)
with jobs still waiting, the target doubles, on probation: if the next
``WINDOW`` does not finish at least ``GAIN`` times as many jobs per second, the
target goes back, threads above it leave, and it stays there for ``HOLD``
seconds (a simple form of .NET's hill-climbing). An idle thread retires after
``KEEP_ALIVE`` seconds. ``RAINCHECK_MAX_WORKERS`` is the hard cap
(docs/design.rst, "An elastic pool").
"""

from __future__ import annotations

from typing import Final

# Threads that stay when idle (until the pool closes): the next job needs no start.
MIN_THREADS: Final = 1
# Threads started at once for waiting jobs, before the pool knows more.
CORE_THREADS: Final = 4
# Seconds a thread may stay idle before it retires.
KEEP_ALIVE: Final = 30.0
# A worker's step (one job, or a batch) slower than this (seconds), with jobs
# still waiting and no thread idle, proposes more threads.
SLOW_STEP: Final = 0.002
# Seconds over which the jobs finished per second are measured.
WINDOW: Final = 0.5
# How much more a larger target must finish to be kept.
GAIN: Final = 1.2
# Seconds a target that did not help holds before it is tried again.
HOLD: Final = 5.0


class ThreadBudget:
    """The pool's thread target, and the throughput that justifies it (pool lock held)."""

    __slots__ = ("_before", "_done", "_hold_until", "_probing", "_since", "rate", "target")

    def __init__(self, cap: int, now: float) -> None:
        self.target = min(CORE_THREADS, cap)
        self.rate = 0.0  # jobs finished per second in the last window
        self._done = 0
        self._since = now
        self._probing = False
        self._before = (self.target, 0.0)
        self._hold_until = now

    def step_done(self, wall: float, done: int, now: float, jobs_wait: bool, cap: int) -> bool:
        """A worker finished ``done`` jobs in a step of ``wall`` seconds; whether the
        target grew (and more threads should start)."""
        self._done += done
        elapsed = now - self._since
        if elapsed >= WINDOW:
            rate = self._done / elapsed
            if self._probing:
                self._probing = False
                target, rate_before = self._before
                if rate < GAIN * rate_before:  # more threads did not finish more jobs
                    self.target = target
                    self._hold_until = now + HOLD
            self.rate, self._done, self._since = rate, 0, now
        if (
            wall > SLOW_STEP
            and jobs_wait
            and not self._probing
            and self.target < cap
            and now >= self._hold_until
        ):
            self._before = (self.target, self.rate)
            self.target = min(cap, 2 * self.target)
            self._probing = True
            self._done, self._since = 0, now  # the probe's window starts now
            return True
        return False

    def resized(self, cap: int, threads: int) -> None:
        """The cap changed, or a thread retired: back towards ``CORE_THREADS``."""
        self.target = max(min(CORE_THREADS, cap), min(threads, cap))
