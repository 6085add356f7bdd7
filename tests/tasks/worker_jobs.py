"""Jobs that a real worker's task schedules outside any request, where the
worker ends its child process with ``os._exit()`` (test_worker_exits.py).
Django is set up here; each job writes ``ran BATCH-N`` to
``$RAINCHECK_TEST_EVENTS``.
"""

from __future__ import annotations

import asyncio
import os
import time

import django
from django.conf import settings

settings.configure(INSTALLED_APPS=["raincheck"], RAINCHECK_MAX_WORKERS=1, LOGGING_CONFIG=None)
django.setup()

from raincheck import raincheck  # noqa: E402

EVENTS = os.environ["RAINCHECK_TEST_EVENTS"]
JOBS_PER_TASK = 4


def _write(line: str) -> None:
    # One write() per line on an O_APPEND descriptor: lines never interleave.
    fd = os.open(EVENTS, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, f"{line}\n".encode())
    finally:
        os.close(fd)


@raincheck
def note(tag: str) -> None:
    time.sleep(0.05)  # one pool thread: the task's later jobs are still queued as it ends
    _write(f"ran {tag}")


@raincheck
async def note_async(tag: str) -> None:
    await asyncio.sleep(0.05)
    _write(f"ran {tag}")


def schedule_notes(batch: int) -> None:
    """The task's body: half sync, half async jobs."""
    for n in range(JOBS_PER_TASK):
        (note_async if n % 2 else note).schedule(f"{batch}-{n}")
