"""The same project with jobs kept in the process: RaincheckBackend and the pool only."""

from __future__ import annotations

from tests.tasks.db_project.settings import *  # noqa: F403

RAINCHECK_TASKS_BACKEND = None
