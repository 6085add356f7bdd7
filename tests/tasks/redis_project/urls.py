"""``/schedule/`` schedules a job, ``/enqueue-fail/`` enqueues a failing one and
answers its result id, ``/result/`` reads a result back from the backend,
``/queued/`` counts the messages waiting in Redis."""

from __future__ import annotations

from typing import Any

import redis
from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

from raincheck.tasks.framework import task_enqueued
from raincheck.tasks.handle import enqueue
from raincheck.tasks.routing import routed_task
from tests.tasks.db_project.events import record
from tests.tasks.redis_project import tasks


class MarkedResponse(JsonResponse):
    def close(self) -> None:
        record("response closed")  # the client has the whole response
        super().close()


def _queued() -> int:
    """Messages waiting in the broker for the "default" queue."""
    client = redis.Redis.from_url(f"{settings.REDIS_URL}/0")
    try:
        if settings.ENGINE == "rq":
            return int(client.llen("rq:queue:default"))
        # Celery's Redis transport keeps one list per queue and priority step.
        return sum(int(client.llen(key)) for key in client.scan_iter("default*"))
    finally:
        client.close()


def schedule(request: HttpRequest) -> HttpResponse:
    tasks.greet.schedule(request.GET["name"])
    return MarkedResponse({"queued_during_view": _queued()})


def enqueue_fail(request: HttpRequest) -> HttpResponse:
    result = enqueue(tasks.fail, request.GET["message"])
    return JsonResponse({"id": None if result is None else result.id})


def result(request: HttpRequest) -> HttpResponse:
    backend = routed_task(tasks.greet.func, "durable").get_backend()
    try:
        found = backend.get_result(request.GET["id"])
    except Exception as exc:
        # Seen once with django-tasks-fennel on a loaded machine while the worker
        # was recording a failure: the test polls again rather than fail on a 500.
        return JsonResponse({"status": f"unreadable ({type(exc).__name__}: {exc})"})
    status = str(found.status).rpartition(".")[2]
    return JsonResponse(
        {
            "status": status,
            "return_value": found.return_value if status == "SUCCESSFUL" else None,
            "errors": [error.exception_class_path for error in found.errors],
            "task_path": getattr(found.task, "module_path", None),  # None: Celery forgot it
        }
    )


def queued(request: HttpRequest) -> HttpResponse:
    return JsonResponse({"queued": _queued()})


def _enqueued(sender: Any, task_result: Any, **kwargs: Any) -> None:
    record(f"task enqueued id={task_result.id}")


task_enqueued.connect(_enqueued, dispatch_uid="tests.tasks.redis_project.enqueued")
try:
    # django-tasks-rq sends the backport's signal, even on Django 6.
    from django_tasks.signals import task_enqueued as backport_task_enqueued
except ImportError:
    pass
else:
    if backport_task_enqueued is not task_enqueued:
        backport_task_enqueued.connect(_enqueued, dispatch_uid="tests.tasks.redis_project.bp")

urlpatterns = [
    path("schedule/", schedule),
    path("enqueue-fail/", enqueue_fail),
    path("result/", result),
    path("queued/", queued),
]
