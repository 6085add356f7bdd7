"""The views the HTTP benchmarks load: each does the same work but for its jobs.

The jobs they schedule are counted, as scheduled and as run, in each server
process (``tally``), so that a graceful stop can be checked for lost jobs.
"""

from __future__ import annotations

import asyncio
import os

from django.http import HttpRequest, HttpResponse

from benchmarks import jobs, peers
from benchmarks.project import tally
from benchmarks.project.tally import RAN, SCHEDULED

JOBS_PER_REQUEST = 5


def io_job(i: int) -> None:
    jobs.io_5ms(i)
    RAN.add()


def cpu_job(i: int) -> None:
    jobs.cpu_500us(i)
    RAN.add()


async def async_io_job(i: int) -> None:
    # dj-raincheck calls this in a thread and never awaits the coroutine, so
    # under it none of these jobs run: RAN stays at 0.
    await jobs.async_io_5ms(i)
    RAN.add()


# Built at import; under BENCH_PEER=none only the views without jobs are loaded.
_peer = None if peers.peer_name() == "none" else peers.active()
_schedule_io = None if _peer is None else _peer.schedulable(io_job)
_schedule_cpu = None if _peer is None else _peer.schedulable(cpu_job)
_schedule_async = None if _peer is None else _peer.schedulable(async_io_job)
# raincheck is loaded by now: its pool's peak is read before its drain forgets it.
tally.register_before_drain()

if "BENCH_FIXED_POOL" in os.environ:
    # raincheck's pool before it was elastic: a thread started for each job that
    # waits, up to RAINCHECK_MAX_WORKERS, and no trials either way (its core is
    # its cap). The pool reads CORE_THREADS when it is made, at the first job.
    from raincheck import sizing

    sizing.CORE_THREADS = int(os.environ["BENCH_MAX_WORKERS"])  # type: ignore[misc]


def no_jobs(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


def scheduled(request: HttpRequest) -> HttpResponse:
    """5 jobs of 5 ms I/O, run after the response by this process's peer."""
    assert _schedule_io is not None
    for i in range(JOBS_PER_REQUEST):
        _schedule_io(i)
        SCHEDULED.add()
    return HttpResponse(b"ok")


def inline(request: HttpRequest) -> HttpResponse:
    """The same 5 jobs, run in the view before it answers (not counted: not scheduled)."""
    for i in range(JOBS_PER_REQUEST):
        jobs.io_5ms(i)
    return HttpResponse(b"ok")


def cpu(request: HttpRequest) -> HttpResponse:
    """5 jobs of about 0.5 ms of pure-Python work each, run after the response."""
    assert _schedule_cpu is not None
    for i in range(JOBS_PER_REQUEST):
        _schedule_cpu(i)
        SCHEDULED.add()
    return HttpResponse(b"ok")


async def async_no_jobs(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


async def async_scheduled(request: HttpRequest) -> HttpResponse:
    """An async view scheduling 5 async jobs of 5 ms ``asyncio.sleep`` each."""
    assert _schedule_async is not None
    for i in range(JOBS_PER_REQUEST):
        _schedule_async(i)
        SCHEDULED.add()
    return HttpResponse(b"ok")


# The tasks async_on_servers_loop made, until each ends: asyncio keeps only weak references.
_on_servers_loop: set[asyncio.Task[None]] = set()


async def async_on_servers_loop(request: HttpRequest) -> HttpResponse:
    """The same 5 async jobs as tasks on the server's own event loop, as a view
    would make them without a library: what raincheck's own loop is measured against.
    Nothing drains them: a server stopping cancels the tasks left on its loop."""
    loop = asyncio.get_running_loop()
    for i in range(JOBS_PER_REQUEST):
        task = loop.create_task(async_io_job(i))
        _on_servers_loop.add(task)
        task.add_done_callback(_on_servers_loop.discard)
        SCHEDULED.add()
    return HttpResponse(b"ok")
