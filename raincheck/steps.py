"""One step of a pool worker: a job, then the rest of its batch, outside the pool's lock.

A worker takes a job and, under load, a batch after it (``raincheck.backlog``).
It runs them here without the lock, and counts their outcomes once, after all
of them. A job may fork: the forking thread is then the child's only thread,
and it must leave at once, touching neither the parent's jobs nor the locks its
threads may have held (``raincheck.forks``).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable

from raincheck.forks import GENERATION
from raincheck.jobs import Job


def run_step(
    run_job: Callable[[Job], bool],
    running: dict[int, Job],
    me: int,
    job: Job,
    batch: deque[Job] | None,
) -> tuple[int, int] | None:
    """Run ``job``, then the rest of ``batch``; ``(succeeded, failed)``, or None in a
    child that a job forked (the child then ends with this thread, unless the
    job's own code decided otherwise)."""
    before = GENERATION[0]
    succeeded = failed = 0
    while True:
        try:
            ok = run_job(job)
        except BaseException:  # run_job reports every failure; none may kill a worker
            ok = False
        if ok:
            succeeded += 1
        else:
            failed += 1
        if GENERATION[0] != before:
            return None
        if batch is None:
            return succeeded, failed
        try:
            job = batch.popleft()
        except IndexError:  # all run, or reclaimed by another worker
            return succeeded, failed
        running[me] = job  # without the lock: only a drain's deadline log reads it
