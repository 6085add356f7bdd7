"""Process-wide job counters and the public snapshot of them."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    """A snapshot of this process's raincheck counters (``raincheck.stats()``).

    ``scheduled`` counts jobs handed to raincheck to run: a request's jobs are
    counted when its response has been sent. Once everything has drained,
    ``succeeded + failed + dropped == scheduled``; ``ran_in_caller`` counts the
    succeeded or failed jobs that backpressure or shutdown ran on the thread that
    handed them off rather than on the pool. ``queued`` counts every accepted job
    not started yet, ``running`` the workers busy with a job. A worker that took
    several jobs in one step adds their outcomes once it has run them all, so
    while jobs run the counts may trail by a few jobs per worker.
    """

    scheduled: int
    queued: int
    running: int
    succeeded: int
    failed: int
    dropped: int
    ran_in_caller: int
    workers: int


class Counters:
    """Monotonic counters that outlive any one pool but not the process.

    ``lock`` is also the lock of the pool that uses these counters, so a worker
    accounts for a finished job and takes the next one in one acquisition.
    """

    __slots__ = ("dropped", "failed", "lock", "ran_in_caller", "scheduled", "succeeded")

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.scheduled = 0
        self.succeeded = 0
        self.failed = 0
        self.dropped = 0
        self.ran_in_caller = 0

    def snapshot(self, queued: int = 0, running: int = 0, workers: int = 0) -> Stats:
        return Stats(
            scheduled=self.scheduled,
            queued=queued,
            running=running,
            succeeded=self.succeeded,
            failed=self.failed,
            dropped=self.dropped,
            ran_in_caller=self.ran_in_caller,
            workers=workers,
        )
