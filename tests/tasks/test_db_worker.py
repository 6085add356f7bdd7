"""End to end with a durable backend: django-tasks-db and its own ``db_worker`` process.

A real server (``runserver``) and a real ``db_worker`` share a database: a
SQLite file, and a real PostgreSQL where one can run here. The view schedules a
``@raincheck`` job; RAINCHECK_TASKS_BACKEND sends it to django-tasks-db after
the response; the worker process runs it and records the result. Every wait
polls another process with a deadline.
"""

from __future__ import annotations

import importlib.util
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.server

if importlib.util.find_spec("django_tasks_db") is None:
    pytest.skip(
        "django-tasks-db is not installed (pip install --group tasks; it needs Django >= 5.2)",
        allow_module_level=True,
    )
pytest.importorskip(
    "raincheck.backends",
    reason="needs django.tasks (Django >= 6.0) or the django-tasks backport",
    exc_type=ImportError,
)

from tests.servers.harness import free_port  # noqa: E402
from tests.servers.postgres import Cluster  # noqa: E402
from tests.tasks.processes import (  # noqa: E402
    Process,
    get,
    migrated_env,
    read_events,
    wait_for_port,
    wait_until,
)

SETTINGS = "tests.tasks.db_project.settings"
TASK_PATH = "raincheck.tasks.routed.tests:tasks:db_project:jobs:greet"


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest) -> dict[str, str]:
    """Environment that points the project at its database (SQLite: none needed)."""
    if request.param == "sqlite":
        return {}
    cluster: Cluster = request.getfixturevalue("postgres")
    return {"RAINCHECK_TEST_DATABASE": json.dumps(cluster.django_database())}


@pytest.fixture
def processes(tmp_path: Path, database: dict[str, str]) -> Iterator[tuple[Process, Process, int]]:
    """A ``db_worker`` and a ``runserver`` on a migrated database; both always stopped."""
    env = migrated_env(SETTINGS, tmp_path, database)
    port = free_port()
    started: list[Process] = []
    try:
        worker = Process(
            "db_worker",
            ["db_worker", "--backend", "durable", "--interval", "0.05", "--no-startup-delay"],
            env,
            tmp_path,
        )
        started.append(worker)
        server = Process(
            "runserver", ["runserver", "--noreload", f"127.0.0.1:{port}"], env, tmp_path
        )
        started.append(server)
        wait_for_port(port, server)
        yield worker, server, port
    finally:
        for process in reversed(started):
            process.stop()


def test_scheduled_job_is_run_by_a_separate_db_worker(
    processes: tuple[Process, Process, int], tmp_path: Path, database: dict[str, str]
) -> None:
    """A job scheduled in a view is stored after the response and run by the db_worker process."""
    worker, server, port = processes
    vendor = get(port, "/results/")[1]["vendor"]
    assert vendor == ("postgresql" if database else "sqlite")
    status, body = get(port, "/schedule/?name=ada")
    assert status == 200
    assert body == {"rows_during_view": 0}

    rows: list[dict[str, Any]] = []

    def finished() -> bool:
        nonlocal rows
        rows = get(port, "/results/")[1]["rows"]
        return bool(rows) and rows[0]["status"] in ("SUCCESSFUL", "FAILED")

    wait_until(finished, "a finished task row", worker, server)
    (row,) = rows
    assert row["status"] == "SUCCESSFUL", worker.output()
    assert row["task_path"] == TASK_PATH
    assert row["backend_name"] == "durable"
    assert row["args_kwargs"] == {"args": ["ada"], "kwargs": {}}
    assert row["return_value"] == "hello ada"
    assert len(row["worker_ids"]) == 1

    assert read_events(tmp_path) == [
        f"response closed pid={server.pid}",
        f"task enqueued pid={server.pid}",
        f"job ran pid={worker.pid}",
        f"task finished SUCCESSFUL hello ada pid={worker.pid}",  # the worker's own signal
    ]
