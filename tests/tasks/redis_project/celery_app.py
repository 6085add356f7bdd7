"""The project's Celery app, as Celery's "First steps with Django" lays it out."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tests.tasks.redis_project.settings")

app = Celery("redis_project")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Imports each installed app's tasks.py in the worker: this project's holds the
# @raincheck jobs, whose routed Tasks are registered with Celery as they are made.
app.autodiscover_tasks()
