"""``/schedule/`` schedules a job; ``/results/`` shows django-tasks-db's rows."""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.db import connection
from django.db.models import Model
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from raincheck.tasks.framework import task_enqueued, task_finished
from tests.tasks.db_project import jobs, tasks
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
    return JsonResponse({"rows": list(rows), "vendor": connection.vendor})


async def async_task(request: HttpRequest) -> HttpResponse:
    result = await tasks.add_when_released.aenqueue(request.GET["marker"], 2, 3)
    return MarkedResponse({"status": str(result.status)})


async def async_job(request: HttpRequest) -> HttpResponse:
    tasks.async_job.schedule(request.GET["name"])
    return MarkedResponse({})


def _enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
    record("task enqueued")


def _finished(sender: Any, task_result: Any, **kwargs: Any) -> None:
    outcome = task_result.return_value if task_result.status == "SUCCESSFUL" else None
    record(f"task finished {task_result.status} {outcome}")


task_enqueued.connect(_enqueued, dispatch_uid="tests.tasks.db_project.enqueued")
task_finished.connect(_finished, dispatch_uid="tests.tasks.db_project.finished")

urlpatterns = [
    path("schedule/", schedule),
    path("results/", results),
    path("async-task/", async_task),
    path("async-job/", async_job),
]
