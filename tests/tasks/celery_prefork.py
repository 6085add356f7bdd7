"""A Celery app whose task schedules raincheck jobs in a prefork child:
``celery -A tests.tasks.celery_prefork worker`` (test_worker_exits.py). Celery
is imported before Django is set up, as a project's ``__init__.py`` imports
its Celery app.
"""

from __future__ import annotations

import os

from celery import Celery

from tests.tasks import worker_jobs

app = Celery("celery_prefork", broker=os.environ["RAINCHECK_TEST_BROKER"])
schedule_notes = app.task(worker_jobs.schedule_notes)
