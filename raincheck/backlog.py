"""The pool's backlog: accepted jobs not started yet, queued or in a worker's batch.

A worker takes a long queue in batches (``MAX_BATCH``): each step costs a lock
round-trip that, with several workers, turns into a hand-over of the GIL; in
steps of 16 a burst of short jobs runs about three times faster. Jobs in a
batch still belong to the backlog: they count against the queue's bound, and
``reclaim()`` puts them back when another worker is idle or a drain ends.

Batches are for short jobs only: a step should last about ``STEP_TIME`` at
most. Slow jobs gain nothing from them, and the pool's thread budget counts
a step's jobs when it ends: 16 jobs of 200 ms made one step of 3.2 s, so its
half-second windows saw nothing, then a burst, and judged its trials by that
noise (raincheck.sizing). One worker of a saturated gunicorn process was held
at 4 threads of its 32 that way, finishing a fifth of the jobs of the other.

Every method but ``next_in_batch`` is called with the pool's lock held.
"""

from __future__ import annotations

from collections import deque
from typing import Final

from raincheck.jobs import Job

MAX_BATCH: Final = 16
# Seconds a step may last: at most a tenth of the thread budget's window.
STEP_TIME: Final = 0.05


class Overflow:
    """The jobs ``Pool.put`` could not queue: to run in the caller, or dropped."""

    __slots__ = ("dropped", "run_in_caller")

    def __init__(self, run_in_caller: list[Job], dropped: list[Job]) -> None:
        self.run_in_caller = run_in_caller
        self.dropped = dropped


class Backlog:
    """One FIFO queue, plus the batches workers took from it, by worker."""

    __slots__ = ("batch", "batches", "held", "queue")

    def __init__(self) -> None:
        self.queue: deque[Job] = deque()
        # The owner takes from a batch's left without the lock; reclaim() takes
        # from its right with it; each deque operation is atomic, so each job
        # runs once.
        self.batches: dict[int, deque[Job]] = {}
        # By worker: the jobs its step took and reclaim() did not take back,
        # i.e. those it has run, runs, or will run. Known without asking the
        # worker, which takes the next job of its batch without the lock.
        self.held: dict[int, int] = {}
        # The most jobs a worker takes in one step, from how long the last took.
        self.batch = MAX_BATCH

    def __len__(self) -> int:
        if not self.batches:
            return len(self.queue)
        return len(self.queue) + sum(map(len, self.batches.values()))

    def take(self, worker: int, workers: int) -> tuple[Job, deque[Job] | None]:
        """The next job for ``worker``, with the rest of its batch if it took one.

        A share of a long queue in one step, one job of a short one: a
        request's few slow jobs still start on as many workers.
        """
        queue = self.queue
        size = min(len(queue) // workers, self.batch)
        if size <= 1:
            self.held[worker] = 1
            return queue.popleft(), None
        batch = deque([queue.popleft() for _ in range(size)])
        self.batches[worker] = batch
        self.held[worker] = size
        return batch.popleft(), batch

    def done(self, worker: int, jobs: int, seconds: float) -> None:
        """``worker`` has run (or lost to ``reclaim``) its whole batch: ``jobs`` jobs
        in ``seconds``, which size the next batches."""
        self.batches.pop(worker, None)
        self.held.pop(worker, None)
        if jobs:
            fit = int(STEP_TIME * jobs / seconds) if seconds > 0 else MAX_BATCH
            self.batch = max(1, min(fit, MAX_BATCH))

    def reclaim(self) -> int:
        """Put every batch's unstarted jobs back at the head of the queue.

        Their owners are running a job meanwhile; they find their batch empty
        when that job ends. Returns how many jobs came back.
        """
        reclaimed = 0
        for worker, batch in self.batches.items():
            taken: list[Job] = []
            while True:
                try:
                    taken.append(batch.pop())
                except IndexError:
                    break
            self.queue.extendleft(taken)  # popped newest first: the order is kept
            self.held[worker] -= len(taken)
            reclaimed += len(taken)
        return reclaimed

    def push_dropping_oldest(self, jobs: list[Job], bound: int) -> list[Job]:
        """Append ``jobs``, dropping the oldest waiting ones beyond ``bound``; the dropped."""
        # The oldest may be in a batch. With the lock held no new batch forms,
        # so after reclaim() the queue holds every waiting job.
        self.reclaim()
        dropped = []
        for job in jobs:
            if len(self.queue) >= bound:
                dropped.append(self.queue.popleft())
            self.queue.append(job)
        return dropped

    def discard(self) -> list[Job]:
        """Empty the backlog; its jobs, oldest first."""
        self.reclaim()
        jobs = list(self.queue)
        self.queue.clear()
        return jobs
