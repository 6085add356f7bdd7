"""``@raincheck`` functions sent to a Tasks backend by RAINCHECK_TASKS_BACKEND."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from raincheck import raincheck
from tests.app.jobs import record


@raincheck
def greet(name: str, punctuation: str = ".") -> str:
    """Record the greeting with the running thread's name, and return it."""
    greeting = f"hello {name}{punctuation}"
    record(threading.current_thread().name, greeting)
    return greeting


@raincheck
async def greet_async(name: str) -> str:
    await asyncio.sleep(0)
    greeting = f"hello {name}"
    record(threading.current_thread().name, greeting)
    return greeting


@raincheck(on_success=True)
def greet_on_success(name: str) -> None:
    record(threading.current_thread().name, f"hello {name}")


@raincheck(on_commit=True)
def greet_on_commit(name: str) -> None:
    record(threading.current_thread().name, f"hello {name}")


@raincheck
def returns_object() -> object:
    """Does its work, and returns something JSON cannot carry."""
    record(threading.current_thread().name, "returned an object")
    return object()


@raincheck
def takes_anything(*args: Any, **kwargs: Any) -> None:
    record(threading.current_thread().name, "took anything")


def _not_at_module_level() -> Any:
    @raincheck
    def nested(value: str) -> None:
        record(threading.current_thread().name, value)

    return nested


nested = _not_at_module_level()


def _plain(value: str) -> None:
    record(threading.current_thread().name, value)


# The same function under another name: a worker importing the function's own
# dotted path would not find this @raincheck object there.
renamed = raincheck(_plain)
