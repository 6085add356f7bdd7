"""A real PostgreSQL: the pool's database connections, seen from pg_stat_activity.

A gunicorn gthread worker with ``RAINCHECK_MAX_WORKERS = 4`` runs thousands of
jobs that each ask PostgreSQL, through Django's connection, which session they
use. Meanwhile a separate psycopg connection samples ``pg_stat_activity`` for
the sessions of the jobs' ``application_name``: the views never touch the
database, so every such session belongs to a pool thread.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.servers.catalog import spec
from tests.servers.conftest import ServerFactory
from tests.servers.harness import Server, ServerError, count, gunicorn_argv
from tests.servers.postgres import Cluster

pytestmark = [pytest.mark.server, pytest.mark.postgres]

WORKERS = 4
JOBS = 2000
APP = "raincheck-jobs"
ACTIVITY = "SELECT count(*) FROM pg_stat_activity WHERE application_name = %s"
ACTIVITY_BY_STATE = (
    "SELECT count(*), count(*) FILTER (WHERE state = 'active')"
    " FROM pg_stat_activity WHERE application_name = %s"
)


def start_server(start: ServerFactory, postgres: Cluster, **database: Any) -> Server:
    settings = postgres.django_database(OPTIONS={"application_name": APP}, **database)
    return start(
        "gunicorn-gthread",
        gunicorn_argv("-k", "gthread", "--threads", "2", "--workers", "1"),
        env={
            "RAINCHECK_TEST_MAX_WORKERS": str(WORKERS),
            "RAINCHECK_TEST_DATABASE": json.dumps(settings),
        },
    )


def client_sockets(pid: int, port: int) -> int:
    """How many TCP connections process ``pid`` has established to 127.0.0.1:``port`` (Linux)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        with contextlib.suppress(OSError):
            target = os.readlink(fd)
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    # Count inodes, not lines: the kernel builds /proc/net/tcp a page at a time,
    # and a socket closed meanwhile shifts the table so that a later page can
    # repeat a line of an earlier one (seen with thousands of short connections).
    established: set[str] = set()
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                fields = line.split()
                remote_port = int(fields[2].rsplit(":", 1)[1], 16)
                if remote_port == port and fields[3] == "01" and fields[9] in inodes:
                    established.add(fields[9])
    return len(established)


class Sampler:
    """Samples, in a thread and as often as it can, the jobs' sessions in pg_stat_activity
    (all of them, and the active ones) and the worker's own connections to PostgreSQL.

    A session closed by its client stays in pg_stat_activity until its backend
    process has exited, a few milliseconds later: with CONN_MAX_AGE = 0 the
    server side may briefly list more sessions than the client holds.
    """

    def __init__(self, postgres: Cluster) -> None:
        import psycopg

        self.postgres = postgres
        self.conn = psycopg.connect(postgres.conninfo(application_name="sampler"), autocommit=True)
        self.server_side: list[int] = []
        self.active: list[int] = []
        self.client_side: list[int] = []
        self.worker = 0
        self.stopping = threading.Event()
        self.threads = [
            threading.Thread(target=self._sample_server_side, name="server-side"),
            threading.Thread(target=self._sample_client_side, name="client-side"),
        ]

    def now(self) -> int:
        """The jobs' sessions in pg_stat_activity (call it while not sampling)."""
        row = self.conn.execute(ACTIVITY, (APP,)).fetchone()
        assert row is not None
        return int(row[0])

    def _sample_server_side(self) -> None:
        while not self.stopping.is_set():
            row = self.conn.execute(ACTIVITY_BY_STATE, (APP,)).fetchone()
            assert row is not None
            self.server_side.append(int(row[0]))
            self.active.append(int(row[1]))

    def _sample_client_side(self) -> None:
        while sys.platform == "linux" and not self.stopping.is_set():
            self.client_side.append(client_sockets(self.worker, self.postgres.port))

    def watch(self, worker: int) -> Sampler:
        """Start sampling, the client side in process ``worker``."""
        self.worker = worker
        for thread in self.threads:
            thread.start()
        return self

    def __enter__(self) -> Sampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        for thread in self.threads:
            if thread.is_alive():
                thread.join()

    def figures(self) -> dict[str, int]:
        return {
            "samples": len(self.server_side),
            "client_samples": len(self.client_side),
            "max_pg_stat_activity": max(self.server_side, default=0),
            "max_active": max(self.active, default=0),
            "max_client_sockets": max(self.client_side, default=0),
        }

    def wait_for(self, count: int, server: Server, timeout: float = 10.0) -> None:
        """Poll until exactly ``count`` job sessions exist (backends exit asynchronously)."""
        deadline = time.monotonic() + timeout
        while (seen := self.now()) != count:
            if time.monotonic() > deadline:
                raise ServerError(server.report(f"{seen} job sessions, not {count}"))
            time.sleep(0.02)

    def close(self) -> None:
        self.conn.close()


@pytest.fixture
def sampler(postgres: Cluster) -> Iterator[Sampler]:
    sampler = Sampler(postgres)
    try:
        yield sampler
    finally:
        sampler.close()


def run_jobs(
    server: Server, n: int, timeout: float = 120.0, *, asynchronous: bool = False
) -> dict[str, Any]:
    """Schedule ``n`` more jobs (async ones: ``asynchronous``) and wait until every
    job so far has finished; the report."""
    before = server.get_json("/db-report/")["scheduled"]
    server.get_json(f"/db-jobs/?n={n}" + ("&async" if asynchronous else ""))
    deadline = time.monotonic() + timeout
    while True:
        report: dict[str, Any] = server.get_json("/db-report/")
        done = report["succeeded"] + report["failed"]
        if report["scheduled"] >= before + n and done == report["scheduled"]:
            return report
        if time.monotonic() > deadline:
            raise ServerError(server.report(f"jobs still running after {timeout} s: {report}"))
        time.sleep(0.05)


def check_all_ran_within_workers(
    server: Server, report: dict[str, Any], figures: dict[str, int]
) -> None:
    """Every job succeeded, and no more than WORKERS queried or were connected at once."""
    assert report["succeeded"] == JOBS, server.report(str(report))
    assert report["failed"] == 0, server.report(str(report))
    # The sampler saw the jobs' sessions: the bounds below are not vacuous.
    assert figures["samples"] >= 10, server.report(f"too few samples: {figures}")
    assert figures["max_pg_stat_activity"] >= 1, server.report(f"no session seen: {figures}")
    assert figures["max_active"] <= WORKERS, server.report(str(figures))
    assert figures["max_client_sockets"] <= WORKERS, server.report(str(figures))


@pytest.mark.parametrize("conn_max_age", [0, 60])
def test_thousands_of_jobs_never_hold_more_connections_than_workers(
    start: ServerFactory, postgres: Cluster, sampler: Sampler, conn_max_age: int
) -> None:
    """2,000 jobs on 4 workers: at most 4 sessions, CONN_MAX_AGE honoured, none after shutdown."""
    server = start_server(start, postgres, CONN_MAX_AGE=conn_max_age)
    with sampler.watch(server.get_json("/db-report/")["pid"]):
        report = run_jobs(server, JOBS)
    figures = sampler.figures()
    server.note("sampler", "figures", conn_max_age=conn_max_age, **figures)
    print(f"CONN_MAX_AGE={conn_max_age}: {figures}, {report['sessions']} sessions")
    check_all_ran_within_workers(server, report, figures)
    if conn_max_age:
        # No session ends while the jobs run: the server side counts exactly.
        assert figures["max_pg_stat_activity"] <= WORKERS, server.report(str(figures))
    if conn_max_age == 0:
        # Each job's connection is closed after it: a new session every time.
        assert report["sessions"] == JOBS, server.report(f"{report['sessions']} sessions")
        sampler.wait_for(0, server)
    else:
        # Connections are kept and reused: one per pool thread, open while idle.
        assert 1 <= report["sessions"] <= WORKERS, server.report(f"{report['sessions']} sessions")
        assert sampler.now() == report["sessions"], server.report("idle connections were closed")
    stats = server.get_json("/shutdown/")
    assert stats["workers"] == 0, server.report(f"the pool survived shutdown(): {stats}")
    sampler.wait_for(0, server)


def test_async_jobs_under_uvicorn_never_hold_more_connections_than_the_cap(
    start: ServerFactory, postgres: Cluster, sampler: Sampler
) -> None:
    """2,000 async jobs querying through sync_to_async, a hundred awaiting at once on
    raincheck's loop: their sync calls' threads, and so their sessions, stay within
    RAINCHECK_MAX_WORKERS, and each job's connection is closed when it ends."""
    uvicorn = spec("uvicorn")
    settings = postgres.django_database(OPTIONS={"application_name": APP}, CONN_MAX_AGE=0)
    server = start(
        uvicorn.id,
        uvicorn.argv,
        env={
            "RAINCHECK_TEST_MAX_WORKERS": str(WORKERS),
            "RAINCHECK_TEST_DATABASE": json.dumps(settings),
        },
        stop_signal=uvicorn.stop_signal,
    )
    with sampler.watch(server.get_json("/db-report/")["pid"]):
        report = run_jobs(server, JOBS, asynchronous=True)
    figures = sampler.figures()
    server.note("sampler", "figures", **figures)
    check_all_ran_within_workers(server, report, figures)
    assert report["sessions"] == JOBS, server.report(f"{report['sessions']} sessions")
    sampler.wait_for(0, server)


@pytest.mark.parametrize("health_checks", [False, True], ids=["no-health-checks", "health-checks"])
def test_a_killed_connection_does_not_poison_later_jobs(
    start: ServerFactory, postgres: Cluster, sampler: Sampler, health_checks: bool
) -> None:
    """After PostgreSQL kills the pool's sessions, at most one job per session fails, then none."""
    server = start_server(start, postgres, CONN_MAX_AGE=60, CONN_HEALTH_CHECKS=health_checks)
    first = run_jobs(server, 200)
    assert first["failed"] == 0, server.report(str(first))
    killed = sampler.conn.execute(
        "SELECT count(*) FROM (SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
        " WHERE application_name = %s) AS t",
        (APP,),
    ).fetchone()
    assert killed is not None
    assert killed[0] >= 1, server.report("no session to kill")
    sampler.wait_for(0, server)

    second = run_jobs(server, 200)
    failed = second["failed"]
    print(f"health checks {health_checks}: {killed[0]} sessions killed, {failed} job(s) failed")
    # Django only notices a dead connection when a query fails on it (unless
    # CONN_HEALTH_CHECKS pings it first); the worker then closes it.
    assert failed <= (0 if health_checks else killed[0]), server.report(str(second))
    third = run_jobs(server, 200)
    assert third["failed"] == failed, server.report(f"later jobs failed too: {third}")
    assert third["succeeded"] == 600 - failed
    if failed:
        log = server.wait_for_log("ERROR raincheck", "OperationalError")
        assert log.count("ERROR raincheck") == failed


def test_on_commit_jobs_follow_postgresql_transactions(
    start: ServerFactory, postgres: Cluster
) -> None:
    """On PostgreSQL, on_commit jobs run once their transaction commits, never after a rollback."""
    server = start_server(start, postgres)
    server.get_json("/on-commit/?prefix=tx")
    seen = server.wait_for_events(
        lambda seen: (
            count(seen, "tx-outer", "start") == 1 and count(seen, "tx-kept-savepoint", "start") == 1
        ),
        "the committed jobs",
    )
    server.get_json("/quick/?tag=after")  # a later job: the rolled-back ones had their chance
    seen = server.wait_for_events(lambda seen: count(seen, "after", "end") == 1, "job after")
    assert count(seen, "tx-lost", "start") == 0, server.report("a rolled-back job ran")
    assert count(seen, "tx-lost-savepoint", "start") == 0, server.report("a savepoint's job ran")
    order = [e["event"] for e in seen if e["tag"] in ("tx", "tx-outer")]
    assert order.index("view-return") < order.index("start"), server.report(
        "ran before the response"
    )
