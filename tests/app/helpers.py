"""Helpers shared by the tests: holding the pool's workers and watching it wait."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import django
import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponseBase
from django.test import AsyncClient, override_settings

from raincheck import process
from raincheck.pool import Pool
from raincheck.room import Line, Waiter, never
from tests.app import jobs
from tests.app.jobs import HOLD_LIMIT, Gate


def hold_the_worker() -> Gate:
    """Occupy one of the pool's workers until the returned gate is released."""
    gate = Gate()
    jobs.held.schedule(gate, "held")
    assert gate.started.wait(HOLD_LIMIT)
    return gate


def current_pool() -> Pool:
    """The process's pool, which must exist."""
    pool = process.current().pool
    assert pool is not None
    return pool


class ConditionSpy(threading.Condition):
    """One of the pool's conditions, which also tells the test that someone waits on it."""

    def __init__(self, lock: Any) -> None:
        super().__init__(lock)
        self.waiting = threading.Event()

    def wait(self, timeout: float | None = None) -> bool:
        self.waiting.set()
        return super().wait(timeout)


class LineSpy(Line):
    """The pool's line of threads waiting for room, which also tells the test that one joined."""

    def __init__(self, stop_by: Callable[[], float] = never) -> None:
        super().__init__(stop_by)
        self.waiting = threading.Event()
        self.joins = threading.Semaphore(0)  # released once per thread that joined

    def join(self, lock: threading.RLock, need: int) -> Waiter:
        self.waiting.set()
        self.joins.release()
        return super().join(lock, need)


def spy_on_room(pool: Pool) -> threading.Event:
    """An event set when a thread waits for room in the full queue (``block``)."""
    spy = LineSpy(pool._line._stop_by)
    pool._line = spy
    return spy.waiting


def spy_on_idle(pool: Pool) -> threading.Event:
    """An event set when a thread waits for the pool to be idle (``drain``, ``wait_idle``)."""
    spy = ConditionSpy(pool._lock)
    pool._is_idle = spy
    return spy.waiting


def in_thread(target: Callable[[], object]) -> Callable[[], None]:
    """Start ``target`` in a thread; the returned function joins it and re-raises its error."""
    errors: list[BaseException] = []

    def wrapper() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=wrapper)
    thread.start()

    def join() -> None:
        thread.join(timeout=HOLD_LIMIT)
        assert not thread.is_alive()
        if errors:
            raise errors[0]

    return join


# Django 5.0-6.0's test AsyncClient sends request_started in a copy of the
# request's context; the documented remedy is RaincheckMiddleware, which opens
# the buffer in the request's own context (docs/usage.rst, "Testing").
# For a test that drives AsyncClient without RaincheckMiddleware, to show why the
# docs advise it on Django < 6.1 (strict: it must fail there, and pass on 6.1+).
# 6.0 is affected too (the version matrix runs it): the fix came in 6.1.
fails_with_async_client_before_django_6_1 = pytest.mark.xfail(
    django.VERSION < (6, 1),
    reason="Django < 6.1 sends request_started to sync receivers inside asyncio.gather() "
    "(ticket #36714), and Django's AsyncClient, unlike its ASGI handler, gives a request no "
    "ThreadSensitiveContext through which raincheck.buffers could find the buffer set there",
    strict=True,
)

_ASYNC_CLIENT_MIDDLEWARE = (
    ["raincheck.middleware.RaincheckMiddleware"] if django.VERSION < (6, 1) else []
)


def async_get(path: str) -> HttpResponseBase:
    """``AsyncClient().get(path)`` from sync test code, set up as the docs advise."""

    async def get() -> HttpResponseBase:
        response: HttpResponseBase = await AsyncClient().get(path)
        return response

    with async_client_settings():
        return async_to_sync(get)()


def async_client_settings() -> override_settings:
    """The settings ``async_get`` uses, for tests that drive ``AsyncClient`` themselves."""
    return override_settings(MIDDLEWARE=_ASYNC_CLIENT_MIDDLEWARE)
