"""Views that enqueue tasks or schedule jobs, and mark when their response is done."""

from __future__ import annotations

from typing import Any

from asgiref.sync import sync_to_async
from django.http import HttpRequest, HttpResponse, JsonResponse

from raincheck.tasks.handle import enqueue
from raincheck.testing import wait_idle
from tests.app.jobs import record
from tests.tasks import jobs, tasks

# The TaskResults the views got back, for the test to inspect.
results: list[Any] = []


class MarkedResponse(HttpResponse):
    """Records ``response closed`` when the server closes it: the response is
    complete, and ``request_finished`` is about to be sent."""

    def close(self) -> None:
        record("server", "response closed")
        super().close()


def _view_done() -> MarkedResponse:
    # A job handed to the pool during the view (instead of after the response)
    # would finish inside this wait and be recorded before "view returned".
    wait_idle()
    record("view", "view returned")
    return MarkedResponse("ok")


def enqueue_view(request: HttpRequest) -> HttpResponse:
    results.append(tasks.add.enqueue(2, 3))
    return _view_done()


def enqueue_failing_view(request: HttpRequest) -> HttpResponse:
    results.append(tasks.fail.enqueue("broken on purpose"))
    return _view_done()


async def aenqueue_view(request: HttpRequest) -> HttpResponse:
    results.append(await tasks.add_async.aenqueue(4, 5))
    return await sync_to_async(_view_done)()


def schedule_routed_view(request: HttpRequest) -> HttpResponse:
    jobs.greet.schedule("ada", punctuation="!")
    return _view_done()


async def schedule_routed_async_view(request: HttpRequest) -> HttpResponse:
    jobs.greet_async.schedule("grace")
    return await sync_to_async(_view_done)()


def schedule_unserialisable_view(request: HttpRequest) -> HttpResponse:
    jobs.greet.schedule("ada", punctuation=request)  # type: ignore[arg-type]
    return HttpResponse("not reached")


def schedule_then_fail_view(request: HttpRequest) -> HttpResponse:
    jobs.greet_on_success.schedule("skipped")
    jobs.greet.schedule("kept")
    raise RuntimeError("view failed after scheduling")


def enqueue_routed_view(request: HttpRequest) -> HttpResponse:
    result = enqueue(jobs.greet, "ada")
    return JsonResponse({"id": None if result is None else result.id})
