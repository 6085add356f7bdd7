"""The views the HTTP benchmark loads: each does the same work but for its jobs."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from benchmarks import jobs, peers

JOBS_PER_REQUEST = 5
# Built at import; under BENCH_PEER=none only the other two views are loaded.
_schedule_io = None if peers.peer_name() == "none" else peers.active().schedulable(jobs.io_5ms)


def no_jobs(request: HttpRequest) -> HttpResponse:
    return HttpResponse(b"ok")


def scheduled(request: HttpRequest) -> HttpResponse:
    """5 jobs of 5 ms I/O, run after the response by this process's peer."""
    assert _schedule_io is not None
    for i in range(JOBS_PER_REQUEST):
        _schedule_io(i)
    return HttpResponse(b"ok")


def inline(request: HttpRequest) -> HttpResponse:
    """The same 5 jobs, run in the view before it answers."""
    for i in range(JOBS_PER_REQUEST):
        jobs.io_5ms(i)
    return HttpResponse(b"ok")
