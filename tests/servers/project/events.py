"""An append-only JSON-lines file shared by the server processes and the tests.

Every line is written with one ``write`` on a file opened with ``O_APPEND``, so
lines from different processes and threads never interleave, and their order in
the file is the order in which they happened.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

DIR_ENV = "RAINCHECK_TEST_DIR"
EVENTS_FILE = "events.jsonl"
MARKERS_DIR = "markers"
POLL_SECONDS = 0.01


def test_dir() -> Path:
    """The directory the test that started this server gave it (``$RAINCHECK_TEST_DIR``)."""
    return Path(os.environ[DIR_ENV])


def append(path: Path, tag: str, event: str, **extra: Any) -> None:
    """Append one event line to ``path``: pid, thread name, tag, event and extras."""
    line = {
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        "tag": tag,
        "event": event,
        **extra,
    }
    data = (json.dumps(line, sort_keys=True) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def record(tag: str, event: str, **extra: Any) -> None:
    """Append an event to this server's events file."""
    append(test_dir() / EVENTS_FILE, tag, event, **extra)


def read(path: Path) -> list[dict[str, Any]]:
    """Every complete event line in ``path``, in order (a missing file has none)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    events: list[dict[str, Any]] = []
    for line in text.splitlines(keepends=True):
        if line.endswith("\n"):
            events.append(json.loads(line))
    return events


def _marker(name: str) -> Path:
    return test_dir() / MARKERS_DIR / name


def set_marker(name: str) -> None:
    """Create the marker file ``name`` (it may already exist)."""
    _marker(name).touch()


def has_marker(name: str) -> bool:
    return _marker(name).exists()


def wait_for_marker(name: str, timeout: float) -> bool:
    """Wait until the marker ``name`` exists, at most ``timeout`` seconds; whether it does."""
    deadline = time.monotonic() + timeout
    while not has_marker(name):
        if time.monotonic() > deadline:
            return False
        time.sleep(POLL_SECONDS)
    return True
