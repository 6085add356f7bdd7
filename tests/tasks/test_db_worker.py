"""End to end with a durable backend: django-tasks-db and its own ``db_worker`` process.

A real server (``runserver``) and a real ``db_worker`` share a SQLite file. The
view schedules a ``@raincheck`` job; RAINCHECK_TASKS_BACKEND sends it to
django-tasks-db after the response; the worker process runs it and records the
result. Every wait polls another process with a deadline.
"""

from __future__ import annotations

import http.client
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
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

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS = "tests.tasks.db_project.settings"
DEADLINE = 30.0
POLL = 0.05
TASK_PATH = "raincheck.tasks_routing.tests:tasks:db_project:jobs:greet"


class Process:
    """A ``python -m django`` command running in its own session, logging to a file."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "django", *args],
                cwd=REPO_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    @property
    def pid(self) -> int:
        return self.popen.pid

    def output(self) -> str:
        return self.log.read_text(errors="replace")[-4000:]

    def check_alive(self) -> None:
        if self.popen.poll() is not None:
            raise AssertionError(f"{self.name} exited ({self.popen.returncode}):\n{self.output()}")

    def stop(self) -> None:
        """SIGTERM, then SIGKILL if it has not gone within 10 s."""
        if self.popen.poll() is not None:
            return
        os.killpg(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def get(port: int, path: str) -> tuple[int, Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def wait_for_port(port: int, server: Process) -> None:
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        server.check_alive()
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(POLL)
    raise AssertionError(f"{server.name} did not listen within {DEADLINE} s:\n{server.output()}")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """The environment of both processes, with a migrated SQLite database in ``tmp_path``."""
    environ = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": SETTINGS,
        "RAINCHECK_DB_DIR": str(tmp_path),
        "PYTHONPATH": str(REPO_ROOT),
        "PYTHONUNBUFFERED": "1",
    }
    migrate = subprocess.run(
        [sys.executable, "-m", "django", "migrate", "--noinput", "-v", "0"],
        cwd=REPO_ROOT,
        env=environ,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    return environ


@pytest.fixture
def processes(env: dict[str, str], tmp_path: Path) -> Iterator[tuple[Process, Process, int]]:
    """A ``db_worker`` and a ``runserver``; both always stopped afterwards."""
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
    processes: tuple[Process, Process, int], tmp_path: Path
) -> None:
    """A job scheduled in a view is stored after the response and run by the db_worker process."""
    worker, server, port = processes
    status, body = get(port, "/schedule/?name=ada")
    assert status == 200
    assert body == {"rows_during_view": 0}

    deadline = time.monotonic() + DEADLINE
    rows: list[dict[str, Any]] = []
    while time.monotonic() < deadline:
        worker.check_alive()
        server.check_alive()
        rows = get(port, "/results/")[1]["rows"]
        if rows and rows[0]["status"] in ("SUCCESSFUL", "FAILED"):
            break
        time.sleep(POLL)
    else:
        raise AssertionError(
            f"no finished task within {DEADLINE} s: {rows}\n"
            f"worker:\n{worker.output()}\nserver:\n{server.output()}"
        )

    (row,) = rows
    assert row["status"] == "SUCCESSFUL", worker.output()
    assert row["task_path"] == TASK_PATH
    assert row["backend_name"] == "durable"
    assert row["args_kwargs"] == {"args": ["ada"], "kwargs": {}}
    assert row["return_value"] == "hello ada"
    assert len(row["worker_ids"]) == 1

    events = (tmp_path / "events.txt").read_text().splitlines()
    assert events == [
        f"response closed pid={server.pid}",
        f"task enqueued pid={server.pid}",
        f"job ran pid={worker.pid}",
    ]
