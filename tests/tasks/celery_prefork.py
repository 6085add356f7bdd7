"""A Celery app whose task schedules raincheck jobs, outside any request, in a
prefork child: ``celery -A tests.tasks.celery_prefork worker`` (see
test_celery_prefork.py). Configured from the environment; Celery is imported
before Django is set up, as a project's ``__init__.py`` imports its Celery app.
"""

from __future__ import annotations

import os
import time

from celery import Celery
from django.conf import settings

settings.configure(INSTALLED_APPS=["raincheck"], RAINCHECK_MAX_WORKERS=1, LOGGING_CONFIG=None)

import django  # noqa: E402

django.setup()

from raincheck import raincheck  # noqa: E402

app = Celery("celery_prefork", broker=os.environ["RAINCHECK_TEST_BROKER"])
EVENTS = os.environ["RAINCHECK_TEST_EVENTS"]
JOBS_PER_TASK = 5


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


@app.task  # type: ignore[untyped-decorator]  # Celery ships no type hints
def schedule_notes(batch: int) -> None:
    for n in range(JOBS_PER_TASK):
        note.schedule(f"{batch}-{n}")
