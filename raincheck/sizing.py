"""How many threads the pool may run: enough for waiting jobs, never more than help.

Under the GIL only one thread runs Python code at a time. Jobs that wait (on a
socket, a disk, a lock) leave it free, so more threads finish more of them;
jobs that compute do not: more threads only take the GIL from the server's
own threads, and add switching. So the pool starts threads only for jobs that
wait with no thread idle, up to a target of ``CORE_THREADS``, and moves the
target by trying (a simple form of .NET's hill-climbing):

- Up: when a worker finishes a slow step (``SLOW_STEP``) with jobs still
  waiting, the target doubles, on probation, unless the pool's threads
  already used so much CPU in the last ``WINDOW`` that twice as many would
  hold the GIL more than ``GIL_SHARE`` of the time, and the queue still has
  room: once it is full, the callers wait for the pool (or run or drop
  jobs), so the GIL it would leave them is of no use to them. It is kept
  if, in the next window, the jobs waiting fell to half (the threads caught
  up with a backlog), or that window finished at least ``GAIN`` times as
  many jobs per second as the last one in which no worker went idle.
- Down: after a window in which no worker went idle, the queue had room
  at every step, and the jobs waiting did not grow (threads that do not keep
  up are not too many), the target drops by a quarter (not below
  ``CORE_THREADS``), on probation (with the queue full, the callers wait for
  these threads: a window's noise must not take them away): kept unless the
  next window finishes fewer than ``1 / GAIN`` times as many jobs per second
  as the best window since the target last grew, not just the last one:
  steps down that each lose a little less than that must not add up to a
  pool that finishes half the jobs. (That best is forgotten when no window
  has come near it for ``MAX_HOLD``: the jobs have changed.)
- Stopping: once the process is stopping (a stop signal, or the drain), the
  jobs left must be run by the stop's deadline, and the server's requests no
  longer gain from the GIL the threads leave them: the target goes to the cap
  and stays there (``finish_up``). A target measured down on a busy host
  would otherwise run a full queue with a few threads, and drop the rest.

Only windows in which no worker went idle measure what the threads can do:
in the others the jobs that came were all there was to do, so a load that
grows or shrinks never passes for a change in what threads achieve. A trial
that fails goes back (the threads above the target leave). One that showed
the threads do not help is not made again for ``HOLD`` seconds, twice as long
after each failure in a row (up to ``MAX_HOLD``); one that only showed them
not needed, or had nothing to compare with, waits one ``WINDOW``. An idle
thread retires after ``KEEP_ALIVE`` seconds.
``RAINCHECK_MAX_WORKERS`` is the hard cap (docs/design.rst, "An elastic pool").
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Final

from raincheck import greenlets

# Threads that stay when idle (until the pool closes): the next job needs no start.
MIN_THREADS: Final = 1
# Threads started at once for waiting jobs, before the pool knows more.
CORE_THREADS: Final = 4
# Seconds a thread may stay idle before it retires.
KEEP_ALIVE: Final = 30.0
# A worker's step (one job, or a batch) slower than this (seconds), with jobs
# still waiting and no thread idle, proposes more threads. Also how often a
# busy worker reads its CPU time (a system call: not once per trivial job).
SLOW_STEP: Final = 0.002
# Seconds over which the jobs finished per second are measured.
WINDOW: Final = 0.5
# How much more a larger target must finish to be kept (and a smaller one may lose).
GAIN: Final = 1.2
# The most of the GIL the pool's threads may hold after a trial adds threads
# (CPU seconds per second, all its threads together): the rest is the server's.
GIL_SHARE: Final = 0.5
# Seconds before a trial that failed is made again; doubled after each failure
# in a row, up to MAX_HOLD. A kept target is not tried the other way for HOLD.
HOLD: Final = 5.0
MAX_HOLD: Final = 60.0

UP: Final = 0
DOWN: Final = 1


class ThreadBudget:
    """The pool's thread target, and what justifies it (pool lock held)."""

    __slots__ = (
        "_backlog",
        "_before",
        "_best",
        "_best_at",
        "_cap",
        "_capacity",
        "_cpu",
        "_done",
        "_finishing",
        "_hold",
        "_marks",
        "_pressed",
        "_since",
        "_slack",
        "_stop_by",
        "_trial",
        "_wait_until",
        "_waiting_then",
        "cpu_share",
        "target",
    )

    def __init__(
        self, cap: int, now: float, stop_by: Callable[[], float] = lambda: math.inf
    ) -> None:
        self._cap = cap  # RAINCHECK_MAX_WORKERS
        self.target = min(CORE_THREADS, cap)
        # When the process's stop must be over; infinity while it is not stopping.
        self._stop_by = stop_by
        self._finishing = False  # stopping: the target is the cap (finish_up)
        self.cpu_share = 0.0  # CPU seconds per second of the pool's threads, last window
        # Jobs per second the current target finished in a window with no
        # worker idle: what it can do. None until measured.
        self._capacity: float | None = None
        # The most jobs per second of such a window since the target last grew:
        # what a trial down is judged against. Forgotten once no window has come
        # near it for MAX_HOLD (the jobs have changed).
        self._best: float | None = None
        self._best_at = now
        self._done = 0
        self._cpu = 0.0
        self._marks = threading.local()  # each worker's last (monotonic, thread_time)
        self._since = now
        self._slack = False  # a worker went idle in this window
        # Callers waited for the pool at some step of this window: a full queue
        # is not full at every instant (room for a request's few jobs, its
        # threads not in line yet), and the window's last step may fall there.
        self._pressed = False
        self._trial: int | None = None  # UP or DOWN while a trial runs
        self._before = self.target  # the target before the trial
        self._backlog = 0  # jobs waiting when the trial began
        self._waiting_then = 0  # jobs waiting as the window began
        # By direction: no trial before. The first waits for a window's measures.
        self._wait_until = [now + WINDOW, now + HOLD]
        self._hold = [HOLD, HOLD]  # by direction: the next wait after a failure

    def went_idle(self) -> None:
        """A worker found no job to run."""
        self._slack = True

    def step_done(
        self, wall: float, done: int, now: float, waiting: int, callers_wait: bool = False
    ) -> bool:
        """A worker finished ``done`` jobs in a step of ``wall`` seconds, leaving
        ``waiting`` jobs and no worker idle; whether the target grew (and more
        threads should start). ``callers_wait``: the queue is full, so callers
        wait for room, or run or drop jobs. Called on the worker's thread."""
        before, cap = self.target, self._cap
        if self._finishing or (waiting and self._stop_by() < math.inf):
            return self.finish_up()
        self._done += done
        self._pressed |= callers_wait
        mark: tuple[float, float] | None = self._marks.__dict__.get("mark")
        if mark is None or now - mark[0] > SLOW_STEP:
            cpu = time.thread_time()
            if mark is not None:
                self._cpu += cpu - mark[1]
            self._marks.mark = (now, cpu)
        if now - self._since >= WINDOW:
            self._window_ended(now, waiting, self._pressed)
        if (
            wall > SLOW_STEP
            and waiting
            and self._trial is None
            and self.target < cap
            and now >= self._wait_until[UP]
            and (self._pressed or self._gil_to_spare())
        ):
            self._start_trial(UP, min(cap, 2 * self.target), now)
            self._backlog = waiting
        return self.target > before

    def finish_up(self) -> bool:
        """The process is stopping: every thread the cap allows, from now on;
        whether the target grew (more threads should start)."""
        before, self._finishing, self._trial = self.target, True, None
        self.target = self._cap
        return self.target > before

    def resized(self, cap: int, threads: int) -> None:
        """The cap changed, or a thread retired: back towards ``CORE_THREADS``
        (to the cap while finishing up)."""
        self._cap = cap
        target = max(min(CORE_THREADS, cap), min(threads, cap))
        if self._finishing:
            target = cap
        if target != self.target:
            self.target, self._capacity, self._trial = target, None, None
            self._best = None

    def _gil_to_spare(self) -> bool:
        # Twice the threads would hold the GIL about twice as long. Under gevent
        # every greenlet shares one OS thread, whose CPU time says nothing of the pool's.
        return 2 * self.cpu_share <= GIL_SHARE or greenlets.patched()

    def _start_trial(self, direction: int, target: int, now: float) -> None:
        self._trial, self._before, self.target = direction, self.target, target
        self._done, self._cpu, self._since, self._slack = 0, 0.0, now, False

    def _window_ended(self, now: float, waiting: int, callers_wait: bool) -> None:
        elapsed = now - self._since
        rate = self._done / elapsed
        saturated = not self._slack
        trial, capacity = self._trial, self._capacity
        kept = trial is None
        if trial is not None:
            self._trial = None
            kept = self._trial_kept(trial, rate, saturated, waiting)
            if kept:
                self._hold[trial] = HOLD
                # Neither undo at once what was just kept, nor redo what it undid.
                self._wait_until[1 - trial] = max(self._wait_until[1 - trial], now + HOLD)
                self._capacity = rate if saturated else None
                if trial == UP:
                    self._best = None  # measured again at the new target
            else:
                self.target = self._before  # its capacity is still the one measured
                if saturated and capacity is not None:  # the threads did not help
                    self._wait_until[trial] = now + self._hold[trial]
                    self._hold[trial] = min(2 * self._hold[trial], MAX_HOLD)
                else:  # not needed, or nothing to compare with: a window to measure
                    self._wait_until[trial] = now + WINDOW
        elif saturated:
            self._capacity = rate
        if saturated and kept:  # measured at the target that stays
            self._remember(rate, now)
        self.cpu_share = self._cpu / elapsed
        self._done, self._cpu, self._since, self._slack = 0, 0.0, now, False
        self._pressed = False
        piling_up, self._waiting_then = waiting > self._waiting_then, waiting
        if (
            trial is None
            and saturated
            and not callers_wait
            and not piling_up
            and self.target > CORE_THREADS
            and now >= self._wait_until[DOWN]
        ):
            self._start_trial(DOWN, max(CORE_THREADS, self.target - self.target // 4), now)

    def _trial_kept(self, trial: int, rate: float, saturated: bool, waiting: int) -> bool:
        capacity = self._capacity
        if trial == UP:
            caught_up = self._backlog >= 2 * self._before and 2 * waiting <= self._backlog
            helped = capacity is not None and rate >= GAIN * capacity
            return caught_up or (saturated and helped)
        # Every saturated window at the target that stays is remembered, so the
        # best is never below the capacity, and is None only while it is.
        best = self._best
        return not saturated or best is None or rate * GAIN >= best

    def _remember(self, rate: float, now: float) -> None:
        """Keep ``rate`` as the best, if it is (or the best is forgotten)."""
        best = self._best
        if best is None or rate >= best or now - self._best_at > MAX_HOLD:
            self._best, self._best_at = rate, now
        elif rate * GAIN >= best:
            self._best_at = now  # still what the threads can do
