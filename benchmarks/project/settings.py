"""Settings of the benchmark project; ``BENCH_PEER`` picks the one library it loads."""

from __future__ import annotations

import os
from typing import Any

from benchmarks.peers import installed_apps, peer_name
from benchmarks.project import tally

# Before INSTALLED_APPS loads raincheck, so that its exit hook runs after raincheck's.
tally.register()

SECRET_KEY = "raincheck-benchmarks"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = installed_apps(peer_name())
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "benchmarks.project.urls"
DATABASES: dict[str, Any] = {}
TASKS = {"default": {"BACKEND": "django.tasks.backends.immediate.ImmediateBackend"}}

if "BENCH_MAX_WORKERS" in os.environ:
    RAINCHECK_MAX_WORKERS = int(os.environ["BENCH_MAX_WORKERS"])
if "BENCH_MAX_QUEUE" in os.environ:
    RAINCHECK_MAX_QUEUE = int(os.environ["BENCH_MAX_QUEUE"])
# A server stopped between two measurements must not wait for a long drain;
# benchmarks/throughput.py passes the value it checks graceful stops against.
RAINCHECK_SHUTDOWN_TIMEOUT = float(os.environ.get("BENCH_SHUTDOWN_TIMEOUT", "2.0"))

# Warnings (one per job a full queue drops) are built and then discarded: their
# cost stays in the figures, their output stays out of the terminal.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {
        "discard": {"class": "logging.NullHandler"},
        "stderr": {"class": "logging.StreamHandler", "level": "ERROR"},
    },
    "loggers": {
        name: {"handlers": ["discard", "stderr"], "level": "WARNING", "propagate": False}
        for name in ("raincheck", "dj_raincheck", "django.tasks")
    },
}
