"""One step of a pool worker: a job, then the rest of its batch, outside the pool's lock.

A worker takes a job and, under load, a batch after it (``raincheck.backlog``).
It runs them here without the lock, and the pool counts their outcomes once,
after all of them; a drain whose deadline passes meanwhile counts them as they
stand (``tally_steps``). A job may fork: the forking thread is then the child's
only thread, and it must leave at once, touching neither the parent's jobs nor
the locks its threads may have held (``raincheck.forks``).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final

from raincheck.forks import GENERATION
from raincheck.jobs import Job

_numbers: Final = itertools.count(1)


class Worker(threading.Thread):
    """A pool thread."""


def new_worker(work: Callable[[], None]) -> Worker:
    """A pool thread that will run ``work``, named ``raincheck-<n>``."""
    return Worker(target=work, name=f"raincheck-{next(_numbers)}", daemon=True)


def run_step(
    run_job: Callable[[Job], bool],
    running: dict[int, Job],
    me: int,
    job: Job,
    batch: deque[Job] | None,
    *,
    outcomes: list[int],
) -> bool:
    """Run ``job``, then the rest of ``batch``, adding each one's outcome to
    ``outcomes`` (``[succeeded, failed]``) as it ends: a drain whose deadline
    passes mid-step counts them from there. False in a child that a job forked
    (the child then ends with this thread, unless the job's own code decided
    otherwise)."""
    before = GENERATION[0]
    while True:
        try:
            ok = run_job(job)
        except BaseException:  # run_job reports every failure; none may kill a worker
            ok = False
        outcomes[0 if ok else 1] += 1
        if GENERATION[0] != before:
            return False
        if batch is None:
            return True
        try:
            job = batch.popleft()
        except IndexError:  # all run, or reclaimed by another worker
            return True
        running[me] = job  # without the lock: only a drain's deadline log reads it


@dataclass
class Tally:
    """The steps under way at a drain's deadline, counted as they stand."""

    succeeded: int = 0
    failed: int = 0
    dropped: int = 0
    unfinished: list[Job] = field(default_factory=list)


def tally_steps(
    outcomes: dict[int, list[int]], held: dict[int, int], running: dict[int, Job]
) -> Tally:
    """Count each worker's step: its ended jobs by outcome, the one it still runs
    (which nothing can stop) as dropped. By worker: ``outcomes`` as ``run_step``
    adds to them, ``held`` what the step took and was not taken back (the
    backlog's, after ``discard()``), ``running`` the job it runs."""
    tally = Tally()
    for me, ended in outcomes.items():
        ended_ok, ended_failed = ended  # one read: its worker adds to it meanwhile
        tally.succeeded += ended_ok
        tally.failed += ended_failed
        # Taken and not ended: the job it runs, or the next of its batch taken
        # just now (running[me] may still name the last one).
        left = held[me] - ended_ok - ended_failed
        if left:
            tally.dropped += left
            tally.unfinished.append(running[me])
    return tally
