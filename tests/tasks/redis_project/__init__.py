"""A project whose ``@raincheck`` jobs go to Redis-backed Tasks backends, for
test_redis_workers.py: RQ (django-tasks-rq) and Celery (django-tasks-celery,
django-tasks-fennel), chosen by ``RAINCHECK_ENGINE``.

With django-tasks-celery the package imports its Celery app, as Celery's
Django guide lays a project out; django-tasks-fennel brings its own app.
"""

from __future__ import annotations

import os

if os.environ.get("RAINCHECK_ENGINE") == "celery":
    from tests.tasks.redis_project.celery_app import app as celery_app

    __all__ = ["celery_app"]
