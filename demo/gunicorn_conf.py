"""gunicorn hooks for the demo (the options themselves are on run.py's command line)."""

from __future__ import annotations

from typing import Any

from demo.events import emit


def worker_exit(server: Any, worker: Any) -> None:
    """Runs in the worker when it has stopped serving, just before Python exits.

    raincheck's drain is an ``atexit`` hook, so it runs right after this.
    """
    import raincheck

    stats = raincheck.stats()
    emit("worker_stopping", worker_pid=worker.pid, queued=stats.queued, running=stats.running)


def child_exit(server: Any, worker: Any) -> None:
    """Runs in the master once a worker process has exited and been reaped."""
    emit("worker_exit", worker_pid=worker.pid)
