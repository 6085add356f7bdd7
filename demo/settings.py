"""Settings of the demo project: no database, no middleware, raincheck installed."""

from __future__ import annotations

import os

SECRET_KEY = "demo-only-not-secret"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
ROOT_URLCONF = "demo.urls"
INSTALLED_APPS = ["raincheck"]
MIDDLEWARE: list[str] = []
DATABASES: dict[str, dict[str, str]] = {}
USE_TZ = True

# run.py sets this so that it checks the bound it configured.
RAINCHECK_MAX_WORKERS = int(os.environ.get("DEMO_MAX_WORKERS", "4"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"stderr": {"class": "logging.StreamHandler"}},
    "loggers": {"raincheck": {"handlers": ["stderr"], "level": "INFO"}},
}
