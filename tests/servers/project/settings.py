"""Settings for the project the server tests run; tuned through environment variables."""

from __future__ import annotations

import json
import os
from typing import Any

SECRET_KEY = "raincheck-server-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
INSTALLED_APPS = ["raincheck"]
# CommonMiddleware sets Content-Length, so a client knows it has the whole body
# without waiting for the server to close the connection (which some servers do
# only after request_finished).
MIDDLEWARE = ["django.middleware.common.CommonMiddleware"]
ROOT_URLCONF = "tests.servers.project.urls"
# runserver serves this (the wrapper that records response-sent), like the other servers.
WSGI_APPLICATION = "tests.servers.project.wsgi.application"
# test_postgres.py passes a DATABASES["default"] as JSON; the other tests need none.
DATABASES: dict[str, Any] = (
    {"default": json.loads(os.environ["RAINCHECK_TEST_DATABASE"])}
    if "RAINCHECK_TEST_DATABASE" in os.environ
    else {}
)

RAINCHECK_MAX_WORKERS = int(os.environ.get("RAINCHECK_TEST_MAX_WORKERS", "4"))
RAINCHECK_SHUTDOWN_TIMEOUT = float(os.environ.get("RAINCHECK_TEST_SHUTDOWN_TIMEOUT", "10"))
RAINCHECK_DRAIN_ON_SIGTERM = os.environ.get("RAINCHECK_TEST_DRAIN_ON_SIGTERM") == "1"
RAINCHECK_MAX_QUEUE = int(os.environ.get("RAINCHECK_TEST_MAX_QUEUE", "10000"))
RAINCHECK_BLOCK_TIMEOUT = float(os.environ.get("RAINCHECK_TEST_BLOCK_TIMEOUT", "5"))

# raincheck's failures and shutdown warnings go to stderr, which the tests read.
LOGGING: dict[str, Any] = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(levelname)s %(name)s pid=%(process)d %(threadName)s: %(message)s"}
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        }
    },
    "loggers": {"raincheck": {"handlers": ["stderr"], "level": "INFO", "propagate": False}},
}

# tests/servers/test_observability.py runs a server with one observability library,
# set up as docs/observability.rst says; the other server tests import none of them.
OBSERVE = os.environ.get("RAINCHECK_TEST_OBSERVE", "")
if OBSERVE:
    MIDDLEWARE = [*MIDDLEWARE, "tests.servers.project.observability.path_middleware"]
    if OBSERVE == "structlog":
        from tests.servers.project import observe_structlog

        # Shaped like docs/observability.rst's lines: tests/test_observability_docs.py
        # finds them here.
        INSTALLED_APPS = [
            *INSTALLED_APPS,
            "django_structlog",
        ]
        MIDDLEWARE = [
            *MIDDLEWARE,
            "django_structlog.middlewares.RequestMiddleware",
        ]
        LOGGING = observe_structlog.LOGGING
    elif OBSERVE.startswith("sentry"):
        from tests.servers.project import observe_sentry  # noqa: F401  (sentry_sdk.init)

        if OBSERVE == "sentry-recipe":
            from tests.servers.project import sentry_receiver  # noqa: F401  (connects it)
