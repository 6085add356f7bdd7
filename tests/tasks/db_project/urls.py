"""``/schedule/`` schedules a job; ``/results/`` shows django-tasks-db's rows."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from raincheck.backends import task_enqueued
from tests.tasks.db_project import jobs
from tests.tasks.db_project.events import record


class MarkedResponse(JsonResponse):
    def close(self) -> None:
        record("response closed")  # the client has the whole response
        super().close()


def _rows() -> type[Model]:
    # By label, so that type checking does not need django-tasks-db installed.
    return apps.get_model("django_tasks_database", "DBTaskResult")


def schedule(request: HttpRequest) -> HttpResponse:
    jobs.greet.schedule(request.GET["name"])
    return MarkedResponse({"rows_during_view": _rows()._default_manager.count()})


def results(request: HttpRequest) -> HttpResponse:
    rows = (
        _rows()
        ._default_manager.order_by("enqueued_at")
        .values("task_path", "status", "args_kwargs", "return_value", "worker_ids", "backend_name")
    )
    return JsonResponse({"rows": list(rows)})


def _enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
    record("task enqueued")


task_enqueued.connect(_enqueued, dispatch_uid="tests.tasks.db_project.enqueued")

urlpatterns = [
    path("schedule/", schedule),
    path("results/", results),
]
