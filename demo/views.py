"""Views that schedule jobs; each reports what it scheduled before it answers."""

from __future__ import annotations

import dataclasses
import os
import time

from django.http import HttpRequest, HttpResponse, JsonResponse

import raincheck
from demo import jobs
from demo.events import emit


def health(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def signup(request: HttpRequest) -> HttpResponse:
    """Schedule three jobs, then take ``render_ms`` to "render" the page."""
    user = request.GET["user"]
    jobs.send_welcome_email.schedule(user)
    jobs.add_to_newsletter.schedule(user)
    jobs.record_signup_metric.schedule(user)
    emit("scheduled", path=request.get_full_path(), count=3)
    time.sleep(int(request.GET.get("render_ms", "0")) / 1000)
    return HttpResponse(f"Welcome, {user}!")


def burst(request: HttpRequest) -> HttpResponse:
    ref = request.GET["ref"]
    count = int(request.GET["jobs"])
    for number in range(count):
        jobs.make_thumbnail.schedule(ref, number)
    emit("scheduled", path=request.get_full_path(), count=count)
    return HttpResponse(f"{count} thumbnails on their way")


def batch(request: HttpRequest) -> HttpResponse:
    ref = request.GET["ref"]
    count = int(request.GET["jobs"])
    seconds = int(request.GET["ms"]) / 1000
    for number in range(count):
        jobs.export_row.schedule(ref, number, seconds)
    emit("scheduled", path=request.get_full_path(), count=count)
    return HttpResponse(f"exporting {count} rows")


def stats(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pid": os.getpid(), **dataclasses.asdict(raincheck.stats())})
