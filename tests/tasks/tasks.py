"""Django ``@task`` functions for the backend tests; each records that it ran."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from raincheck.tasks.framework import TaskContext, task
from tests.app.jobs import record


@task
def add(a: int, b: int) -> int:
    """Record ``add`` with the running thread's name and return the sum."""
    record(threading.current_thread().name, "add")
    return a + b


@task
async def add_async(a: int, b: int) -> int:
    """The async twin of ``add``."""
    await asyncio.sleep(0)
    record(threading.current_thread().name, "add_async")
    return a + b


@task
def fail(message: str) -> None:
    raise ValueError(message)


@task
async def fail_async(message: str) -> None:
    await asyncio.sleep(0)
    raise ValueError(message)


@task
def unserialisable() -> object:
    return object()


@task(takes_context=True)
def with_context(context: TaskContext[Any, Any], value: str) -> dict[str, Any]:
    """Report what the task sees of its own result while it runs."""
    result = context.task_result
    return {
        "value": value,
        "id": result.id,
        "status": str(result.status),
        "attempt": context.attempt,
        "started": result.started_at is not None,
    }


@task
def interrupt() -> None:
    raise KeyboardInterrupt


@task
async def interrupt_async() -> None:
    await asyncio.sleep(0)
    raise KeyboardInterrupt
