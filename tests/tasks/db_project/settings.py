"""A project whose ``@raincheck`` jobs go to django-tasks-db, for test_db_worker.py.

The web server and the ``db_worker`` process both use it; ``RAINCHECK_DB_DIR``
(set by the test) holds the SQLite database and the events file;
``RAINCHECK_TEST_DATABASE`` replaces SQLite with a PostgreSQL database.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import django

DATA_DIR = Path(os.environ["RAINCHECK_DB_DIR"])

SECRET_KEY = "raincheck-db-worker-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = [
    *([] if django.VERSION >= (6, 0) else ["django_tasks"]),
    "django_tasks_db",
    "raincheck",
]
DATABASES = {
    # A PostgreSQL database when the test gives one (RAINCHECK_TEST_DATABASE, JSON).
    "default": json.loads(os.environ["RAINCHECK_TEST_DATABASE"])
    if "RAINCHECK_TEST_DATABASE" in os.environ
    else {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": str(DATA_DIR / "db.sqlite3"),
        # The web process and the worker write the same file.
        "OPTIONS": {"timeout": 20},
    }
}
ROOT_URLCONF = "tests.tasks.db_project.urls"
MIDDLEWARE: list[str] = []
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

TASKS = {
    "default": {"BACKEND": "raincheck.backends.RaincheckBackend"},
    "durable": {"BACKEND": "django_tasks_db.DatabaseBackend"},
}
RAINCHECK_TASKS_BACKEND: str | None = "durable"
if "RAINCHECK_TASKS_ENQUEUE" in os.environ:  # benchmarks/durability.py measures both
    RAINCHECK_TASKS_ENQUEUE = os.environ["RAINCHECK_TASKS_ENQUEUE"]

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"raincheck": {"handlers": ["console"], "level": "INFO"}},
}
