"""Views that schedule jobs and report, as JSON, the pid that served them."""

from __future__ import annotations

import asyncio
import os
import time

from django.http import HttpRequest, JsonResponse

from tests.servers.project.events import has_marker, record, set_marker
from tests.servers.project.jobs import explode, mark, nap

# How long a holding view waits for the other request's job.
HOLD_SECONDS = 10.0
POLL_SECONDS = 0.01


def ping(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"pid": os.getpid()})


def quick(request: HttpRequest) -> JsonResponse:
    """Schedule ``mark(tag)`` and answer at once."""
    tag = request.GET["tag"]
    mark.schedule(tag)
    record(tag, "view-return")
    return JsonResponse({"pid": os.getpid()})


def hold(request: HttpRequest) -> JsonResponse:
    """Schedule ``mark(tag)``, then wait until the marker ``wait_for`` exists.

    The body says whether this request's own job had started by then (it must
    not have: the response has not been sent) and whether ``wait_for`` appeared.
    """
    tag, wait_for = request.GET["tag"], request.GET["wait_for"]
    mark.schedule(tag)
    record(tag, "view-entered")
    deadline = time.monotonic() + HOLD_SECONDS
    saw_other = has_marker(wait_for)
    while not saw_other and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
        saw_other = has_marker(wait_for)
    job_started = has_marker(tag)
    record(tag, "view-return", job_started=job_started, saw_other=saw_other)
    return JsonResponse({"pid": os.getpid(), "job_started": job_started, "saw_other": saw_other})


def release(request: HttpRequest) -> JsonResponse:
    """Create the marker ``name`` (releasing a holding view) and schedule ``mark(tag)``."""
    set_marker(request.GET["name"])
    tag = request.GET["tag"]
    mark.schedule(tag)
    record(tag, "view-return")
    return JsonResponse({"pid": os.getpid()})


async def quick_async(request: HttpRequest) -> JsonResponse:
    """``quick`` as an async view."""
    tag = request.GET["tag"]
    mark.schedule(tag)
    record(tag, "view-return")
    return JsonResponse({"pid": os.getpid()})


async def hold_async(request: HttpRequest) -> JsonResponse:
    """``hold`` as an async view: it polls with ``asyncio.sleep``."""
    tag, wait_for = request.GET["tag"], request.GET["wait_for"]
    mark.schedule(tag)
    record(tag, "view-entered")
    deadline = time.monotonic() + HOLD_SECONDS
    saw_other = has_marker(wait_for)
    while not saw_other and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
        saw_other = has_marker(wait_for)
    job_started = has_marker(tag)
    record(tag, "view-return", job_started=job_started, saw_other=saw_other)
    return JsonResponse({"pid": os.getpid(), "job_started": job_started, "saw_other": saw_other})


def naps(request: HttpRequest) -> JsonResponse:
    """Schedule ``n`` jobs ``nap(f"{prefix}-{i}", seconds)``."""
    prefix, n, seconds = request.GET["prefix"], int(request.GET["n"]), float(request.GET["seconds"])
    for i in range(n):
        nap.schedule(f"{prefix}-{i}", seconds)
    return JsonResponse({"pid": os.getpid()})


def fail(request: HttpRequest) -> JsonResponse:
    """Schedule a job that raises, then ``mark(f"{tag}-after")``."""
    tag = request.GET["tag"]
    explode.schedule(tag)
    mark.schedule(f"{tag}-after")
    return JsonResponse({"pid": os.getpid()})
