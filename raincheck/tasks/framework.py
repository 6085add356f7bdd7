"""Which Django Tasks framework there is: ``django.tasks`` (Django >= 6.0) or the
``django-tasks`` backport. Importing this module fails, with a message that says
what to install, when there is neither; raincheck itself never imports it unless
Tasks are used.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

try:
    from django.tasks import (
        DEFAULT_TASK_BACKEND_ALIAS,
        DEFAULT_TASK_QUEUE_NAME,
        Task,
        TaskContext,
        TaskResult,
        TaskResultStatus,
        task,
        task_backends,
    )
    from django.tasks.backends.base import BaseTaskBackend
    from django.tasks.base import TaskError
    from django.tasks.exceptions import InvalidTask, InvalidTaskBackend, TaskResultDoesNotExist
    from django.tasks.signals import task_enqueued, task_finished, task_started
    from django.utils.inspect import is_module_level_function
    from django.utils.json import normalize_json
except ImportError:  # Django < 6.0: the backport, if installed
    if not TYPE_CHECKING:  # mypy checks against django.tasks
        try:
            from django_tasks import (
                DEFAULT_TASK_BACKEND_ALIAS,
                DEFAULT_TASK_QUEUE_NAME,
                TaskContext,
                TaskResult,
                TaskResultStatus,
                task,
                task_backends,
            )
            from django_tasks.backends.base import BaseTaskBackend
            from django_tasks.base import Task, TaskError
            from django_tasks.exceptions import InvalidTaskBackendError as InvalidTaskBackend
            from django_tasks.exceptions import InvalidTaskError as InvalidTask
            from django_tasks.exceptions import TaskResultDoesNotExist
            from django_tasks.signals import task_enqueued, task_finished, task_started
            from django_tasks.utils import is_module_level_function, normalize_json
        except ImportError as exc:
            raise ImportError(
                "raincheck.backends needs Django's Tasks framework: Django 6.0 or later, "
                "or the backport (pip install django-tasks) on older Django versions."
            ) from exc

__all__ = [
    "DEFAULT_TASK_BACKEND_ALIAS",
    "DEFAULT_TASK_QUEUE_NAME",
    "BaseTaskBackend",
    "InvalidTask",
    "InvalidTaskBackend",
    "Task",
    "TaskContext",
    "TaskError",
    "TaskResult",
    "TaskResultDoesNotExist",
    "TaskResultStatus",
    "is_module_level_function",
    "normalize_json",
    "task",
    "task_backends",
    "task_enqueued",
    "task_finished",
    "task_started",
]
