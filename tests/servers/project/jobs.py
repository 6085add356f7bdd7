"""The jobs the server tests schedule; each one records its start and end."""

from __future__ import annotations

import time

from raincheck import raincheck
from tests.servers.project.events import record, set_marker


@raincheck
def mark(tag: str) -> None:
    """Record the start, create the marker file ``tag``, record the end."""
    record(tag, "start")
    set_marker(tag)
    record(tag, "end")


@raincheck
def nap(tag: str, seconds: float) -> None:
    """Record the start, sleep ``seconds``, record the end."""
    record(tag, "start")
    time.sleep(seconds)
    record(tag, "end")


@raincheck
def explode(tag: str) -> None:
    """Record the start, then raise."""
    record(tag, "start")
    raise RuntimeError(f"job {tag} exploded on purpose")
