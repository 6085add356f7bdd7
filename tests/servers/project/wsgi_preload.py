"""WSGI entry point for ``gunicorn --preload``: schedules jobs at import time.

Imported once, in the master, before it forks its workers. The jobs are
scheduled outside any request, so raincheck hands them to the master's pool at
once. With one pool thread (the test sets ``RAINCHECK_TEST_MAX_WORKERS=1``) the
first job is still running, and the second still queued, when the master forks:
each must run exactly once, in the master, and never in a forked worker.
"""

from __future__ import annotations

from tests.servers.project.jobs import mark, nap
from tests.servers.project.wsgi import application

IMPORT_TAGS = ("import-slow", "import-queued")

nap.schedule(IMPORT_TAGS[0], 0.5)
mark.schedule(IMPORT_TAGS[1])

__all__ = ["application"]
