from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable

from django.http import HttpRequest, HttpResponse

from tests.app.jobs import explode, remember, remember_async, remember_on_success

# Per-test view bodies for /hook/<name>/ and /hook-async/<name>/; cleared after
# each test (tests/conftest.py).
hooks: dict[str, Callable[[HttpRequest], Awaitable[None] | None]] = {}


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


def explode_view(request: HttpRequest) -> HttpResponse:
    explode.schedule("from a view")
    return HttpResponse("ok")


def on_success_view(request: HttpRequest, status: int) -> HttpResponse:
    remember_on_success.schedule(f"on_success {status}")
    remember.schedule(f"always {status}")
    return HttpResponse(status=status)


async def on_success_async_view(request: HttpRequest, status: int) -> HttpResponse:
    remember_on_success.schedule(f"on_success {status}")
    remember.schedule(f"always {status}")
    return HttpResponse(status=status)


def hook_view(request: HttpRequest, name: str) -> HttpResponse:
    hooks[name](request)
    return HttpResponse("ok")


async def hook_async_view(request: HttpRequest, name: str) -> HttpResponse:
    result = hooks[name](request)
    if inspect.isawaitable(result):
        await result
    return HttpResponse("ok")
