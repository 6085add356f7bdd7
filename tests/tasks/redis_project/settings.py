"""Settings of the Redis-backed project: ``RAINCHECK_ENGINE`` picks the Tasks
backend (``rq``, ``celery``, ``fennel``), ``RAINCHECK_REDIS_URL`` the test's own
Redis, ``RAINCHECK_DB_DIR`` where the events file goes; ``RAINCHECK_TASKS_ENQUEUE``
passes through."""

from __future__ import annotations

import os
from pathlib import Path

import django

DATA_DIR = Path(os.environ["RAINCHECK_DB_DIR"])
ENGINE = os.environ["RAINCHECK_ENGINE"]
REDIS_URL = os.environ["RAINCHECK_REDIS_URL"]  # redis://127.0.0.1:PORT

SECRET_KEY = "raincheck-redis-worker-tests"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1", "localhost"]
USE_TZ = True
DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3", "NAME": str(DATA_DIR / "db.sqlite3")}
}
ROOT_URLCONF = "tests.tasks.redis_project.urls"
MIDDLEWARE: list[str] = []
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"

BACKENDS = {
    "rq": "django_tasks_rq.RQBackend",
    "celery": "django_tasks_celery.CeleryBackend",
    "fennel": "django_tasks_fennel.CeleryBackend",
}
ENGINE_APPS = {
    # django-tasks-rq runs on the backport even on Django 6.
    "rq": [*([] if django.VERSION >= (6, 0) else ["django_tasks"]), "django_rq", "django_tasks_rq"],
    "celery": [],
    "fennel": [*([] if django.VERSION >= (6, 0) else ["django_tasks"]), "django_tasks_fennel"],
}
INSTALLED_APPS = [
    *ENGINE_APPS[ENGINE],
    "raincheck",
    "tests.tasks.redis_project",  # its tasks.py is what Celery autodiscovers
]
TASKS = {
    "default": {"BACKEND": "raincheck.backends.RaincheckBackend"},
    "durable": {"BACKEND": BACKENDS[ENGINE], "QUEUES": ["default"]},
}
RAINCHECK_TASKS_BACKEND = "durable"
if "RAINCHECK_TASKS_ENQUEUE" in os.environ:
    RAINCHECK_TASKS_ENQUEUE = os.environ["RAINCHECK_TASKS_ENQUEUE"]

RQ_QUEUES = {"default": {"URL": f"{REDIS_URL}/0"}}

CELERY_BROKER_URL = f"{REDIS_URL}/0"
CELERY_RESULT_BACKEND = f"{REDIS_URL}/1"
CELERY_RESULT_EXTENDED = True
# Both Celery backends send Django's "default" queue to Celery's default queue.
CELERY_TASK_DEFAULT_QUEUE = "default"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"raincheck": {"handlers": ["console"], "level": "INFO"}},
}
