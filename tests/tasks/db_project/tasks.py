"""Async work for the uvicorn test: a Django task and a ``@raincheck`` job."""

from __future__ import annotations

import asyncio
import threading

from django.conf import settings

from raincheck import raincheck
from raincheck.tasks.framework import task
from tests.tasks.db_project.events import record

HOLD_LIMIT = 20.0


@task
async def add_when_released(marker: str, a: int, b: int) -> int:
    """Start, then wait (without blocking any loop) until the test creates ``marker``."""
    record(f"async task started thread={threading.current_thread().name}")
    loop = asyncio.get_running_loop()
    deadline = loop.time() + HOLD_LIMIT
    while not (settings.DATA_DIR / marker).exists():
        if loop.time() > deadline:
            raise TimeoutError(f"{marker} was never created")
        await asyncio.sleep(0.02)
    return a + b


@raincheck
async def async_job(name: str) -> None:
    await asyncio.sleep(0)
    record(f"async job ran {name} thread={threading.current_thread().name}")
