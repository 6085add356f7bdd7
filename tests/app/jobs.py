"""Jobs used by the tests; each records what it did in ``calls``."""

from __future__ import annotations

import threading

from raincheck import raincheck

calls: list[tuple[str, str]] = []
calls_lock = threading.Lock()


def record(kind: str, value: str) -> None:
    with calls_lock:
        calls.append((kind, value))


@raincheck
def remember(value: str) -> None:
    """Record ``value`` together with the name of the thread that ran it."""
    record(threading.current_thread().name, value)


@raincheck
async def remember_async(value: str) -> None:
    record(threading.current_thread().name, value)


@raincheck
def explode(message: str) -> None:
    raise ValueError(message)
