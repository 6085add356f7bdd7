"""The durability window: from a response being complete to its routed job being
stored by the Tasks backend, for each engine and each RAINCHECK_TASKS_ENQUEUE.

``python -m benchmarks.durability [--requests N]`` from the ``make test``
environment (it has the ``tasks`` and ``scale`` groups; needs redis-server for
RQ and Celery). It starts the test projects of tests/tasks (runserver, and a
Redis of its own on 127.0.0.1), sends N sequential requests that each schedule
one routed job, and reads the times both events were recorded: "response
closed" (the server closes the complete response; request_finished follows)
and "task enqueued" (the backend's enqueue() has returned, so the job is in the
database or in Redis). No worker runs: only the enqueue is measured. Prints an
RST table for docs/scaling.rst.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import tempfile
from pathlib import Path

from tests.servers.harness import free_port
from tests.tasks.processes import Process, get, migrated_env, wait_for_port, wait_until
from tests.tasks.redis_server import REDIS_SERVER, RedisServer

# engine: (label, settings module, package it needs)
ENGINES = {
    "db": ("django-tasks-db (SQLite)", "tests.tasks.db_project.settings", "django_tasks_db"),
    "rq": ("django-tasks-rq (Redis)", "tests.tasks.redis_project.settings", "django_tasks_rq"),
    "celery": (
        "django-tasks-celery (Redis)",
        "tests.tasks.redis_project.settings",
        "django_tasks_celery",
    ),
    "fennel": (
        "django-tasks-fennel (Redis)",
        "tests.tasks.redis_project.settings",
        "django_tasks_fennel",
    ),
}
MODES = ("request_finished", "pool")
WARMUP = 5


def windows(engine: str, mode: str, requests: int) -> list[float]:
    """Milliseconds from "response closed" to "task enqueued", one per request."""
    _, settings, _ = ENGINES[engine]
    with tempfile.TemporaryDirectory() as directory:
        data_dir = Path(directory)
        redis = RedisServer(data_dir) if engine != "db" else None
        server = None
        try:
            extra = {"RAINCHECK_TASKS_ENQUEUE": mode, "RAINCHECK_ENGINE": engine}
            if redis is not None:
                extra["RAINCHECK_REDIS_URL"] = redis.url
            env = migrated_env(settings, data_dir, extra)
            port = free_port()
            server = Process(
                "runserver", ["runserver", "--noreload", f"127.0.0.1:{port}"], env, data_dir
            )
            wait_for_port(port, server)
            for number in range(WARMUP + requests):
                status, _ = get(port, f"/schedule/?name=n{number}")
                assert status == 200
            times = data_dir / "times.txt"

            def all_enqueued() -> bool:
                lines = times.read_text().splitlines()
                return sum(" task enqueued" in line for line in lines) == WARMUP + requests

            wait_until(all_enqueued, "every job enqueued", server)
            closed, enqueued = [], []
            for line in times.read_text().splitlines():
                stamp, _, event = line.partition(" ")
                if event == "response closed":
                    closed.append(float(stamp))
                elif event.startswith("task enqueued"):
                    enqueued.append(float(stamp))
            return [(e - c) * 1000 for c, e in zip(closed, enqueued, strict=True)][WARMUP:]
        finally:
            if server is not None:
                server.stop()
            if redis is not None:
                redis.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200)
    options = parser.parse_args()
    rows = []
    for engine, (label, _, package) in ENGINES.items():
        if importlib.util.find_spec(package) is None or (engine != "db" and not REDIS_SERVER):
            print(f"{label}: skipped ({package} or redis-server missing)")
            continue
        for mode in MODES:
            found = sorted(windows(engine, mode, options.requests))
            p90 = found[int(len(found) * 0.9) - 1]
            row = (label, mode, statistics.median(found), p90, found[-1])
            rows.append(row)
            print("{:<30} {:<17} median {:6.2f} ms  p90 {:6.2f} ms  max {:6.2f} ms".format(*row))
    print()
    print("=" * 30 + "  " + "=" * 17 + "  ======  ======  ======")
    print(f"{'engine':<30}  {'enqueue':<17}  median  p90     max")
    print("=" * 30 + "  " + "=" * 17 + "  ======  ======  ======")
    for label, mode, median, p90, worst in rows:
        print(f"{label:<30}  {mode:<17}  {median:6.2f}  {p90:6.2f}  {worst:6.2f}")
    print("=" * 30 + "  " + "=" * 17 + "  ======  ======  ======")


if __name__ == "__main__":
    main()
