"""The jobs the server tests schedule; each one records its start and end."""

from __future__ import annotations

import asyncio
import threading
import time

from asgiref.sync import sync_to_async
from django.db import connection

from raincheck import raincheck
from tests.servers.project.events import (
    POLL_SECONDS,
    has_marker,
    record,
    set_marker,
    wait_for_marker,
)


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


# How long ``wait`` waits for its marker.
WAIT_SECONDS = 30.0


@raincheck
def wait(tag: str, marker: str) -> None:
    """Record the start, wait until the marker file ``marker`` exists, record the end."""
    record(tag, "start")
    wait_for_marker(marker, WAIT_SECONDS)
    record(tag, "end")


# (backend pid, backend start) of every database session a ``touch_db`` job used.
sessions: set[tuple[int, str]] = set()
sessions_lock = threading.Lock()


@raincheck
def touch_db() -> None:
    """Ask PostgreSQL, through Django's connection, which session this is; remember it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid, backend_start FROM pg_stat_activity WHERE pid = pg_backend_pid()"
        )
        pid, started = cursor.fetchone()
    with sessions_lock:
        sessions.add((pid, started.isoformat()))


@raincheck
async def touch_db_async() -> None:
    """``touch_db`` from an async job, through ``sync_to_async`` as the async ORM does."""
    await sync_to_async(touch_db.func)()


@raincheck(on_commit=True)
def committed(tag: str) -> None:
    """Record that the transaction that scheduled ``tag`` committed and the job ran."""
    record(tag, "start")


@raincheck
async def sleep_until(tag: str, marker: str) -> None:
    """Record the start, await ``asyncio.sleep`` until the marker file ``marker`` exists."""
    record(tag, "start")
    deadline = time.monotonic() + WAIT_SECONDS
    record(tag, "awaiting")
    while not has_marker(marker) and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
    record(tag, "end", released=has_marker(marker))


def select_one() -> int:
    """``SELECT 1`` through Django's connection (an ORM operation Django guards)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (value,) = cursor.fetchone()
    return int(value)


@raincheck
def query(tag: str) -> None:
    """Record the start, query the database, record the end (a failure records the error)."""
    record(tag, "start")
    try:
        value = select_one()
    except Exception as exc:
        record(tag, "error", error=type(exc).__name__)
        raise
    record(tag, "end", value=value)


@raincheck
async def query_async(tag: str) -> None:
    """``query`` as an async job, through ``sync_to_async`` as Django's async ORM does."""
    record(tag, "start")
    try:
        value = await sync_to_async(select_one)()
    except Exception as exc:
        record(tag, "error", error=type(exc).__name__)
        raise
    record(tag, "end", value=value)
