"""docs/observability.rst's django-structlog settings, as the test project runs them.

settings.py takes ``LOGGING`` from here when ``$RAINCHECK_TEST_OBSERVE`` is
``structlog``. Two changes from the page, both checked by
tests/test_observability_docs.py: the log file is in the server's own directory,
and the project's code logs under ``tests`` rather than ``myapp``.
"""

from __future__ import annotations

import os
from typing import Any

import structlog

from raincheck.logs import add_job_name
from tests.servers.project.events import test_dir

LOG_FILE = "structlog.jsonl"

structlog.configure(
    processors=[
        structlog.contextvars.merge_contextvars,
        add_job_name,
        structlog.stdlib.filter_by_level,
        structlog.processors.TimeStamper(fmt="iso"),
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.format_exc_info,
        structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
    ],
    logger_factory=structlog.stdlib.LoggerFactory(),
    cache_logger_on_first_use=True,
)
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "json": {
            "()": structlog.stdlib.ProcessorFormatter,
            "processor": structlog.processors.JSONRenderer(),
        },
    },
    "handlers": {
        "json_file": {
            "class": "logging.FileHandler",
            "filename": os.fspath(test_dir() / LOG_FILE),
            "formatter": "json",
        },
    },
    "loggers": {
        "django_structlog": {"handlers": ["json_file"], "level": "INFO"},
        "tests": {"handlers": ["json_file"], "level": "INFO"},
    },
}
