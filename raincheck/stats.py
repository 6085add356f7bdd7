"""Job counters: the per-process ``Counters`` and the public ``Stats`` snapshot."""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class Stats:
    """A snapshot of this process's raincheck counters (``raincheck.stats()``).

    ``scheduled`` counts jobs handed to raincheck to run: a request's jobs are
    counted when its response has been sent. Once everything has drained, or a
    drain has returned (it counts what it could not wait for as dropped),
    ``succeeded + failed + dropped == scheduled``; ``ran_in_caller`` counts the
    succeeded or failed jobs that backpressure or shutdown ran on the thread that
    handed them off rather than on the pool. ``queued`` counts every accepted job
    not started yet, ``running`` the jobs started and not finished (on the pool's
    threads, and async jobs awaiting on raincheck's event loop). A worker that took
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
    # The most pool threads at once, since the pool was made (it grows and shrinks).
    peak_workers: int = 0


class Counters:
    """Monotonic counts that outlive any one pool but not the process.

    ``add()`` is the only writer. The counters have a lock of their own, so the
    pool, the hand-off and the caller can record without sharing the pool's.
    """

    __slots__ = ("dropped", "failed", "lock", "ran_in_caller", "scheduled", "succeeded")

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.scheduled = 0
        self.succeeded = 0
        self.failed = 0
        self.dropped = 0
        self.ran_in_caller = 0

    def add(
        self,
        *,
        scheduled: int = 0,
        succeeded: int = 0,
        failed: int = 0,
        dropped: int = 0,
        ran_in_caller: int = 0,
    ) -> None:
        with self.lock:
            self.scheduled += scheduled
            self.succeeded += succeeded
            self.failed += failed
            self.dropped += dropped
            self.ran_in_caller += ran_in_caller

    def snapshot(
        self, queued: int = 0, running: int = 0, workers: int = 0, peak_workers: int = 0
    ) -> Stats:
        with self.lock:
            return Stats(
                scheduled=self.scheduled,
                queued=queued,
                running=running,
                succeeded=self.succeeded,
                failed=self.failed,
                dropped=self.dropped,
                ran_in_caller=self.ran_in_caller,
                workers=workers,
                peak_workers=peak_workers,
            )
