"""Views that schedule jobs and report, as JSON, the pid that served them."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterator

from django.http import (
    FileResponse,
    HttpRequest,
    HttpResponseBase,
    JsonResponse,
    StreamingHttpResponse,
)

import raincheck
from tests.servers.project import jobs
from tests.servers.project.events import has_marker, record, set_marker, wait_for_marker
from tests.servers.project.jobs import explode, mark, nap, wait

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
    """``hold`` as an async view: it polls with ``asyncio.sleep``.

    ``seconds`` (default ``HOLD_SECONDS``) bounds the wait.
    """
    tag, wait_for = request.GET["tag"], request.GET["wait_for"]
    mark.schedule(tag)
    record(tag, "view-entered")
    deadline = time.monotonic() + float(request.GET.get("seconds", HOLD_SECONDS))
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


# -- after the response: plain, streaming and file bodies --------------------------

CHUNK = b"x" * 65536
CHUNKS = 4


def checkpoint(tag: str) -> None:
    """Record whether job ``tag`` has started, once a probe job proves the pool is running.

    The probe is scheduled outside any request (from a thread of its own), so it
    is handed to the pool at once and runs while the response is still being
    produced. The test project's pool has one thread: had job ``tag`` been
    handed off already (at ``schedule()``, or when the view returned), it would
    have been queued before the probe and would have run first.
    """
    probe = f"{tag}-probe"
    thread = threading.Thread(target=mark.schedule, args=(probe,), name=f"probe-{tag}")
    thread.start()
    saw_probe = wait_for_marker(probe, HOLD_SECONDS)
    thread.join(HOLD_SECONDS)
    record(tag, "checkpoint", saw_probe=saw_probe, job_started=has_marker(tag))


def _chunks(tag: str) -> Iterator[bytes]:
    for _ in range(CHUNKS - 1):
        yield CHUNK
    checkpoint(tag)  # the earlier chunks are with the server; the last is not
    yield CHUNK


class CheckpointFile:
    """A file-like body of ``CHUNKS`` chunks that calls ``checkpoint`` before the last one.

    No ``fileno()``, so servers read it rather than ``sendfile()`` it.
    """

    name = "body.bin"

    def __init__(self, on_last: Callable[[], None]) -> None:
        self.left = CHUNKS
        self.on_last = on_last

    def read(self, size: int = -1) -> bytes:
        if self.left == 0:
            return b""
        if self.left == 1:
            self.on_last()
        self.left -= 1
        return CHUNK

    def __iter__(self) -> Iterator[bytes]:
        # uWSGI's wsgi.file_wrapper hands the file back to be iterated.
        return iter(lambda: self.read(len(CHUNK)), b"")

    def close(self) -> None:
        pass


def respond(request: HttpRequest) -> HttpResponseBase:
    """Schedule ``mark(tag)``; answer with a ``kind`` body that checks it has not started.

    ``kind`` is ``plain`` (checked in the view), ``stream`` (a
    ``StreamingHttpResponse``, checked before its last chunk) or ``file`` (a
    ``FileResponse``, checked before its last read).
    """
    tag, kind = request.GET["tag"], request.GET["kind"]
    mark.schedule(tag)
    if kind == "stream":
        return StreamingHttpResponse(_chunks(tag), content_type="application/octet-stream")
    if kind == "file":
        return FileResponse(CheckpointFile(lambda: checkpoint(tag)))
    checkpoint(tag)
    return JsonResponse({"pid": os.getpid()})


# -- a client that goes away ---------------------------------------------------------


async def abandoned(request: HttpRequest) -> JsonResponse:
    """Schedule ``mark(tag)``, then wait for the marker ``f"{tag}-gone"`` (the client left).

    Django >= 5.0 cancels this view when the client disconnects; 4.2 lets it return.
    """
    tag = request.GET["tag"]
    mark.schedule(tag)
    record(tag, "view-entered")
    try:
        deadline = time.monotonic() + HOLD_SECONDS
        while not has_marker(f"{tag}-gone") and time.monotonic() < deadline:
            await asyncio.sleep(POLL_SECONDS)
    except asyncio.CancelledError:
        record(tag, "view-cancelled")
        raise
    record(tag, "view-return")
    return JsonResponse({"pid": os.getpid()})


# -- jobs that outlive the process ------------------------------------------------------


def waits(request: HttpRequest) -> JsonResponse:
    """Schedule ``n`` jobs ``wait(f"{prefix}-{i}", marker)``: they end once ``marker`` exists."""
    prefix, n, marker = request.GET["prefix"], int(request.GET["n"]), request.GET["marker"]
    for i in range(n):
        wait.schedule(f"{prefix}-{i}", marker)
    return JsonResponse({"pid": os.getpid()})


# -- the database (test_postgres.py) ----------------------------------------------------


def db_jobs(request: HttpRequest) -> JsonResponse:
    """Schedule ``n`` ``touch_db`` jobs (``touch_db_async`` with ``async``)."""
    job = jobs.touch_db_async if "async" in request.GET else jobs.touch_db
    for _ in range(int(request.GET["n"])):
        job.schedule()
    return JsonResponse({"pid": os.getpid()})


def _report() -> dict[str, object]:
    with jobs.sessions_lock:
        sessions = len(jobs.sessions)
    stats = raincheck.stats()
    return {"pid": os.getpid(), "sessions": sessions, **dataclasses.asdict(stats)}


def db_report(request: HttpRequest) -> JsonResponse:
    """This process's raincheck.stats() and how many database sessions the jobs used."""
    return JsonResponse(_report())


def shutdown(request: HttpRequest) -> JsonResponse:
    """``raincheck.shutdown()``: drain and stop the pool (its threads close their connections)."""
    raincheck.shutdown()
    return JsonResponse(_report())


class _Rollback(Exception):
    pass


def on_commit(request: HttpRequest) -> JsonResponse:
    """Schedule ``committed`` jobs in committed and rolled-back transactions and savepoints.

    Tags: ``<prefix>-outer`` and ``<prefix>-kept-savepoint`` commit; ``<prefix>-lost-savepoint``
    and ``<prefix>-lost`` are rolled back and must never run.
    """
    from django.db import transaction

    prefix = request.GET["prefix"]
    with transaction.atomic():
        jobs.committed.schedule(f"{prefix}-outer")
        try:
            with transaction.atomic():
                jobs.committed.schedule(f"{prefix}-lost-savepoint")
                raise _Rollback
        except _Rollback:
            pass
        with transaction.atomic():
            jobs.committed.schedule(f"{prefix}-kept-savepoint")
        record(prefix, "before-commit")
    try:
        with transaction.atomic():
            jobs.committed.schedule(f"{prefix}-lost")
            raise _Rollback
    except _Rollback:
        pass
    record(prefix, "view-return")
    return JsonResponse({"pid": os.getpid()})


# -- gevent (test_gevent.py) ---------------------------------------------------------------


def sleepy(request: HttpRequest) -> JsonResponse:
    """Schedule the async job ``sleep_until(tag, marker)``."""
    jobs.sleep_until.schedule(request.GET["tag"], request.GET["marker"])
    return JsonResponse({"pid": os.getpid()})


def query(request: HttpRequest) -> JsonResponse:
    """Query the database in this sync view; with ``tag``, schedule ``query`` and ``query_async``.

    Their tags are ``<tag>-sync`` and ``<tag>-async``.
    """
    value = jobs.select_one()
    tag = request.GET.get("tag")
    if tag is not None:
        jobs.query.schedule(f"{tag}-sync")
        jobs.query_async.schedule(f"{tag}-async")
    return JsonResponse({"pid": os.getpid(), "value": value})
