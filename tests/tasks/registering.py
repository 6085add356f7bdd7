"""A Tasks backend that registers each Task by name when it is made, as the
Celery-based backends (django-tasks-celery, django-tasks-fennel) do, and never
runs anything."""

from __future__ import annotations

from typing import Any, ClassVar

from django.utils.module_loading import import_string

from tests.tasks.conftest import DUMMY_BACKEND

_Dummy: Any = import_string(DUMMY_BACKEND)


class RegisteringBackend(_Dummy):  # type: ignore[misc]
    # Task path -> Task: what a Celery worker's registry would know.
    registered: ClassVar[dict[str, Any]] = {}

    def validate_task(self, task: Any) -> None:
        super().validate_task(task)
        self.registered[task.module_path] = task
