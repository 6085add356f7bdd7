"""RAINCHECK_TASKS_BACKEND: send ``@raincheck`` jobs to a Django Tasks backend.

Placeholder until the Tasks backend lands (issue 4): routing is refused loudly
rather than silently ignored.
"""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from raincheck.jobs import Job


def enqueue_later(job: Job, alias: str) -> Job:
    raise ImproperlyConfigured(
        f"RAINCHECK_TASKS_BACKEND = {alias!r} is not supported by this version of raincheck."
    )
