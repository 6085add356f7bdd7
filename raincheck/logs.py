"""The running job's name on log records: a ``logging.Filter`` and a structlog processor.

Both read the job that the current context runs (``raincheck.jobs.current_job``),
so a log line emitted anywhere inside a job, in its sync_to_async threads and
its event loop's tasks included, carries the job's dotted name; outside a job
they add ``"-"`` (docs/observability.rst, "The job's name in every log line").
"""

from __future__ import annotations

import logging
from collections.abc import MutableMapping
from typing import Any

from raincheck.jobs import current_job

OUTSIDE_A_JOB = "-"


def job_name() -> str:
    """The dotted name of the job running here, or ``"-"``."""
    job = current_job()
    return OUTSIDE_A_JOB if job is None else job.name


class JobNameFilter(logging.Filter):
    """Adds ``record.raincheck_job``: use ``%(raincheck_job)s`` in a format string."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.raincheck_job = job_name()
        return True


def add_job_name(
    logger: Any, method_name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """A structlog processor: adds ``raincheck_job`` to every event logged in a job."""
    event_dict.setdefault("raincheck_job", job_name())
    return event_dict
