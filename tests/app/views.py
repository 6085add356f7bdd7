from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from tests.app.jobs import remember, remember_async


def schedule_view(request: HttpRequest) -> HttpResponse:
    for value in request.GET.getlist("v"):
        remember.schedule(value)
    return HttpResponse("ok")


async def schedule_async_view(request: HttpRequest) -> HttpResponse:
    for value in request.GET.getlist("v"):
        remember_async.schedule(value)
    return HttpResponse("ok")


def failing_view(request: HttpRequest) -> HttpResponse:
    remember.schedule("before-error")
    raise RuntimeError("view failed")
