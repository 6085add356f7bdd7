"""What a pool thread does around each job: Django's database clean-up, and its event loop.

A pool thread never sees ``request_started`` or ``request_finished``, the
signals on which Django closes broken or expired database connections, so it
does that itself around each job (docs/design.rst, "Database connections").
"""

from __future__ import annotations

import threading
from typing import Any

from django.db import close_old_connections, connections
from django.db.backends.signals import connection_created

from raincheck.awaiting import become_job_thread, close_thread_loop
from raincheck.jobs import Job, run_in_context

_local = threading.local()


def run_on_worker(job: Job) -> bool:
    """Run a job on a pool thread, treating it like Django treats a request."""
    # Only a thread that has opened a connection can have one to close; asking
    # Django costs more than a trivial job, so threads that never did skip it.
    state = _local.__dict__  # this thread's: a dict lookup is cheaper than getattr()
    if "started" not in state:
        _local.started = True
        become_job_thread()  # its loop is closed by worker_exit()
    has_db = state.get("has_db", False)
    if has_db:
        close_old_connections()
    try:
        # run(job, on_worker=True), one call shorter: this runs once per job.
        ok: bool = job[3].run(run_in_context, job, True)
        return ok
    finally:
        if has_db or state.get("has_db", False):
            close_old_connections()


def worker_exit() -> None:
    """A pool thread is stopping: close its event loop and every connection it opened."""
    close_thread_loop()
    connections.close_all()


def _note_connection(**kwargs: Any) -> None:
    # connection_created is sent in the thread that opened the connection.
    _local.has_db = True


connection_created.connect(_note_connection, dispatch_uid="raincheck.note_connection")
