"""Real processes for the end-to-end tests: start, poll with a deadline, always stop."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
DEADLINE = 30.0
POLL = 0.05


class Process:
    """A ``python -m <module>`` command running in its own session, logging to a file."""

    def __init__(
        self,
        name: str,
        args: list[str],
        env: dict[str, str],
        log_dir: Path,
        module: str = "django",
        *,
        cwd: Path = REPO_ROOT,
    ) -> None:
        self.name = name
        self.log = log_dir / f"{name}.log"
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                [sys.executable, "-m", module, *args],
                cwd=cwd,
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


def wait_until(condition: Callable[[], bool], what: str, *processes: Process) -> None:
    """Poll ``condition`` until it holds; fail with the processes' logs after DEADLINE."""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        for process in processes:
            process.check_alive()
        if condition():
            return
        time.sleep(POLL)
    logs = "\n".join(f"{p.name}:\n{p.output()}" for p in processes)
    raise AssertionError(f"{what} did not happen within {DEADLINE} s\n{logs}")


def standalone_env(**extra: str) -> dict[str, str]:
    """The environment of a script that configures Django itself (no
    DJANGO_SETTINGS_MODULE), with the repository importable, plus ``extra``."""
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    return env | {"PYTHONPATH": str(REPO_ROOT), **extra}


def migrated_env(
    settings: str, data_dir: Path, extra: dict[str, str] | None = None
) -> dict[str, str]:
    """The environment of a test project (plus ``extra``), its database migrated.

    Its SQLite database, unless ``extra`` names another, lives in ``data_dir``.
    """
    environ = {
        **os.environ,
        **(extra or {}),
        "DJANGO_SETTINGS_MODULE": settings,
        "RAINCHECK_DB_DIR": str(data_dir),
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


def read_events(data_dir: Path) -> list[str]:
    path = data_dir / "events.txt"
    return path.read_text().splitlines() if path.exists() else []
