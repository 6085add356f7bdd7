"""A gevent-patched process that runs raincheck jobs and prints what they saw, as JSON.

``tests/test_greenlets.py`` runs it as gevent's own launcher does, patching
first: ``python -m gevent.monkey --module tests.gevent_process`` (the test
process itself must never be patched). Every wait has a deadline.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import threading
from collections.abc import Callable
from typing import Any

import django
import gevent
from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.signals import request_finished, request_started
from django.db import connection
from django.test import override_settings
from gevent import monkey

import raincheck
from raincheck import raincheck as job
from raincheck import signals
from raincheck.testing import wait_idle

DEADLINE = 10.0
POLL = 0.01
native_ident: Callable[[], int] = monkey.get_original("_thread", "get_ident")
seen: dict[str, Any] = {}
awaiting = threading.Event()
release = threading.Event()
jobs_done = threading.Event()


def select_one() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (value,) = cursor.fetchone()
    return int(value)


def attempt(func: Callable[[], object]) -> object:
    """``func()``, or the name of the exception it raised."""
    try:
        return func()
    except Exception as exc:
        return type(exc).__name__


def where() -> dict[str, object]:
    """The calling code's thread (a greenlet), whether a loop runs in its OS thread, the ORM."""
    return {
        "ident": threading.get_ident(),
        "loop": asyncio._get_running_loop() is not None,
        "orm": attempt(select_one),
    }


@job
async def sleeper() -> None:
    """Await asyncio.sleep until released, telling the main greenlet when it does."""
    seen["sleeper_os_thread_is_main"] = native_ident() == MAIN_OS_THREAD
    await sync_to_async(awaiting.set)()
    for _ in range(int(DEADLINE / POLL)):
        if release.is_set():
            break
        await asyncio.sleep(POLL)


@job
def sync_orm() -> None:
    seen["sync_job"] = where()


@job
async def async_orm() -> None:
    seen["async_job"] = {
        "thread_sensitive": await sync_to_async(where)(),
        "thread_sensitive_again": await sync_to_async(where)(),
        "not_thread_sensitive": await sync_to_async(where, thread_sensitive=False)(),
        "to_thread": await asyncio.to_thread(where),
    }
    await sync_to_async(jobs_done.set)()


@job
async def raises() -> None:
    await asyncio.sleep(0)
    raise ValueError("on purpose")


@job
async def runs_a_job_itself() -> None:
    with override_settings(RAINCHECK_IMMEDIATE=True):
        sync_orm.schedule()  # called right here, in the loop's thread


@job
async def trivial() -> None:
    await asyncio.sleep(0)


@job
async def beside_a_loop() -> None:
    await asyncio.sleep(0)
    seen["beside_a_loop"] = "ran"


holding: list[int] = []
met: list[int] = []


@job
async def hold() -> None:
    """Hold a pool greenlet until released."""
    await sync_to_async(holding.append)(1)
    for _ in range(int(DEADLINE / POLL)):
        if release.is_set():
            break
        await asyncio.sleep(POLL)


@job
async def meet() -> None:
    """Arrive, then wait for the other: only jobs awaited at once both see two."""
    met.append(1)
    for _ in range(int(DEADLINE / POLL)):
        if len(met) >= 2:
            break
        await asyncio.sleep(POLL)
    seen.setdefault("met", []).append(len(met))


def a_request_whose_jobs_find_no_room() -> None:
    """In a greenlet of its own, as a server's request: two async jobs, no room."""
    request_started.send(sender=None)
    meet.schedule()
    meet.schedule()
    request_finished.send(sender=None)


def awaited_together_with_no_room() -> None:
    """Async jobs that find no room run in the caller, awaited together."""
    release.clear()
    for _ in range(4):  # every pool greenlet (RAINCHECK_MAX_WORKERS)
        hold.schedule()
    for _ in range(int(DEADLINE / POLL)):
        if len(holding) == 4:
            break
        gevent.sleep(POLL)
    with override_settings(RAINCHECK_MAX_QUEUE=1, RAINCHECK_BACKPRESSURE="caller_runs"):
        trivial.schedule()  # the queue is full
        gevent.spawn(a_request_whose_jobs_find_no_room).join(DEADLINE)
    release.set()
    wait_idle(DEADLINE)


def run_a_loop(running: threading.Event, stop: threading.Event) -> None:
    """Run an asyncio loop in this greenlet until ``stop``, as an async view's would."""

    async def serve() -> None:
        running.set()
        for _ in range(int(DEADLINE / POLL)):
            if stop.is_set():
                break
            await asyncio.sleep(POLL)

    asyncio.run(serve())


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) if sys.platform == "linux" else 0


def main() -> None:
    assert monkey.is_module_patched("threading"), "run me with python -m gevent.monkey --module"
    settings.configure(
        INSTALLED_APPS=["raincheck"],
        DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": ":memory:"}},
        RAINCHECK_MAX_WORKERS=4,
        LOGGING_CONFIG=None,
    )
    django.setup()

    # While an async job awaits: requests (greenlets) see no loop, and ORM jobs work.
    sleeper.schedule()
    assert awaiting.wait(DEADLINE), "the async job never awaited"
    requests = [gevent.spawn(where) for _ in range(8)]
    gevent.joinall(requests, timeout=DEADLINE)
    seen["requests"] = [request.value for request in requests]
    sync_orm.schedule()

    def on_start(sender: object, **kwargs: object) -> None:
        if sender is async_orm.func:
            seen["async_job_caller"] = threading.get_ident()

    signals.job_started.connect(on_start)
    async_orm.schedule()
    assert jobs_done.wait(DEADLINE), "the ORM jobs never finished"
    seen["sleeper_still_awaiting"] = not release.is_set()
    release.set()
    wait_idle(DEADLINE)
    del seen["sync_job"]

    # An async job's exception is reported as that job's failure.
    failures: list[str] = []

    def on_failure(exception: BaseException, **kwargs: object) -> None:
        failures.append(type(exception).__name__)

    signals.job_failed.connect(on_failure)
    raises.schedule()
    wait_idle(DEADLINE)
    seen["failures"] = failures

    # While another greenlet runs an asyncio loop (which every greenlet of its
    # OS thread then sees running), an async job on the pool still runs.
    running, stop = threading.Event(), threading.Event()
    other = gevent.spawn(run_a_loop, running, stop)
    assert running.wait(DEADLINE), "the other greenlet's loop never ran"
    beside_a_loop.schedule()
    wait_idle(DEADLINE)
    stop.set()
    other.join(DEADLINE)

    # A job an async job runs itself runs where no loop is running.
    runs_a_job_itself.schedule()
    wait_idle(DEADLINE)
    seen["run_by_async_job"] = seen.pop("sync_job")

    # Each async job's native thread frees what gevent gave it.
    trivial.schedule()
    wait_idle(DEADLINE)
    before = open_descriptors()
    for _ in range(50):
        trivial.schedule()
        wait_idle(DEADLINE)
    seen["descriptors_gained"] = open_descriptors() - before
    awaited_together_with_no_room()
    seen["stats"] = {"succeeded": raincheck.stats().succeeded, "failed": raincheck.stats().failed}
    print(json.dumps(seen))


MAIN_OS_THREAD = native_ident()

if __name__ == "__main__":
    main()
