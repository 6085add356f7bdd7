"""Jobs used by the tests; each records what it did in ``calls``."""

from __future__ import annotations

import threading
from typing import ClassVar

from raincheck import raincheck

calls: list[tuple[str, str]] = []
calls_lock = threading.Lock()

# How long a held job waits for its release before giving up; a test that forgets
# to release fails loudly instead of hanging the run.
HOLD_LIMIT = 10.0


def record(kind: str, value: str) -> None:
    with calls_lock:
        calls.append((kind, value))


def values() -> list[str]:
    """The values recorded so far, in order."""
    with calls_lock:
        return [value for _, value in calls]


def thread_of(value: str) -> str:
    """The name of the thread that recorded ``value`` (once)."""
    with calls_lock:
        [thread] = [thread for thread, v in calls if v == value]
    return thread


class Gate:
    """Holds a job: ``started`` is set when it begins, it ends once ``release`` is set.

    Every gate is released after each test (tests/conftest.py), so a failing test
    never leaves a worker blocked.
    """

    opened: ClassVar[list[Gate]] = []

    def __init__(self) -> None:
        self.started = threading.Event()
        self.release = threading.Event()
        Gate.opened.append(self)


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


@raincheck
def held(gate: Gate, value: str) -> None:
    """Signal ``gate.started``, wait for ``gate.release``, then record ``value``."""
    gate.started.set()
    if not gate.release.wait(HOLD_LIMIT):
        raise TimeoutError(f"gate for {value!r} was never released")
    record(threading.current_thread().name, value)


@raincheck
def remember_later(value: str) -> None:
    """Schedule ``remember(value)`` from inside a job."""
    remember.schedule(value)


@raincheck(on_success=True)
def remember_on_success(value: str) -> None:
    """Like ``remember``, but skipped when the request failed."""
    record(threading.current_thread().name, value)


@raincheck(unique=True)
def remember_once(value: str, *, extra: object = None) -> None:
    """Like ``remember``, but scheduled at most once per request with equal arguments."""
    record(threading.current_thread().name, value)


@raincheck(on_commit=True)
def remember_on_commit(value: str) -> None:
    """Like ``remember``, but scheduled only when the transaction commits."""
    record(threading.current_thread().name, value)
