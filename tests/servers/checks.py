"""Scenarios and assertions shared by the server tests."""

from __future__ import annotations

import contextlib
import http.client
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.servers.harness import (
    POLL_INTERVAL,
    Event,
    Server,
    ServerError,
    count,
    only,
    process_gone,
)

JOBS = 30
EXIT_DEADLINE = 20.0
FOUR_WORKERS = {"RAINCHECK_TEST_MAX_WORKERS": "4", "RAINCHECK_TEST_SHUTDOWN_TIMEOUT": "10"}


def schedule_naps(server: Server, prefix: str = "nap", n: int = JOBS) -> int:
    """GET /naps/ (``n`` jobs of 0.1 s); return the pid that served it."""
    pid: int = server.get_json(f"/naps/?prefix={prefix}&n={n}&seconds=0.1")["pid"]
    return pid


def wait_handed_off(server: Server, prefix: str = "nap") -> None:
    """Wait until the first job runs, i.e. the request has reached request_finished."""
    server.wait_for_events(
        lambda seen: count(seen, f"{prefix}-0", "start") == 1, "the first job to start"
    )


def assert_all_ran_once(server: Server, pid: int, prefix: str = "nap", n: int = JOBS) -> None:
    """Every job ``{prefix}-i`` started and finished exactly once, in process ``pid``."""
    seen: list[Event] = server.events()
    for i in range(n):
        tag = f"{prefix}-{i}"
        assert count(seen, tag, "start") == 1, server.report(f"{tag} did not start exactly once")
        assert count(seen, tag, "end") == 1, server.report(f"{tag} did not finish exactly once")
    pids = {e["pid"] for e in seen if e["tag"].startswith(f"{prefix}-")}
    assert pids == {pid}, server.report("a job ran in another process")
    assert "did not finish" not in server.log(), server.report("the drain reported lost jobs")


def assert_replaced(server: Server, old: int) -> None:
    """Worker ``old`` exits and a new worker answers in its place; the master stays.

    Pings meanwhile: a worker recycled by max-requests counts every request,
    readiness checks that timed out included, so the one that queued the jobs
    may need another request or two before its turn comes.
    """
    deadline = time.monotonic() + EXIT_DEADLINE
    while not process_gone(old):
        if time.monotonic() > deadline:
            raise ServerError(server.report(f"worker {old} still running"))
        with contextlib.suppress(OSError, http.client.HTTPException):
            server.get("/ping/", timeout=5)
        time.sleep(POLL_INTERVAL)
    new = server.get_json("/ping/")["pid"]
    assert new not in (old, server.process.pid), server.report("no new worker took over")
    assert server.process.poll() is None, server.report("the master exited")


def check_forked_workers(
    server: Server, import_tags: tuple[str, ...], stop: Callable[[Server], None]
) -> None:
    """Jobs scheduled in the master before it forked ran once, there; each worker runs its own.

    Needs two workers that serve one request at a time: while request w1 holds
    its worker, request w2 can only be served by the other one.
    """
    master = server.process.pid
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="request-w1") as client:
        held = client.submit(server.get_json, "/hold/?tag=w1&wait_for=released")
        server.wait_for_events(lambda seen: count(seen, "w1", "view-entered") == 1, "w1's view")
        releasing = server.get_json("/release/?name=released&tag=w2")
        holding = held.result(timeout=30)
    assert holding["saw_other"], server.report("request w1 was never released")
    workers = {"w1": holding["pid"], "w2": releasing["pid"]}
    assert len({master, *workers.values()}) == 3, server.report(f"not two workers: {workers}")
    server.wait_for_events(
        lambda seen: all(count(seen, tag, "end") for tag in workers), "the workers' jobs"
    )

    # Stopping the workers runs their exit drains: nothing of the master's may run there.
    stop(server)
    assert server.wait_exit(EXIT_DEADLINE) == 0, server.report("the server did not exit cleanly")
    seen = server.events()
    for tag in import_tags:
        assert count(seen, tag, "start") == 1, server.report(f"{tag} did not run exactly once")
        assert count(seen, tag, "end") == 1, server.report(f"{tag} did not finish")
        assert only(seen, tag, "start")["pid"] == master, server.report(f"{tag} not in the master")
    for tag, pid in workers.items():
        assert count(seen, tag, "start") == 1, server.report(f"job {tag} did not run once")
        assert only(seen, tag, "start")["pid"] == pid, server.report(f"job {tag} ran elsewhere")
        assert only(seen, tag, "start")["thread"].startswith("raincheck-")
