"""The demo's jobs, and receivers of raincheck's signals that report each one.

Every job takes a ``ref`` first (the user or batch it belongs to), so ``run.py``
can tell which request's jobs started when.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

from django.dispatch import receiver

from demo.events import emit
from raincheck import raincheck
from raincheck.signals import job_failed, job_finished, job_started


@raincheck
def send_welcome_email(ref: str) -> None:
    time.sleep(0.05)


@raincheck()
def add_to_newsletter(ref: str) -> None:
    time.sleep(0.03)


@raincheck
async def record_signup_metric(ref: str) -> None:
    # An async job is awaited to completion on the pool thread.
    await asyncio.sleep(0.02)


@raincheck
def make_thumbnail(ref: str, number: int) -> None:
    time.sleep(0.04)


@raincheck
def export_row(ref: str, number: int, seconds: float) -> None:
    time.sleep(seconds)


def describe(func: Callable[..., Any], args: tuple[Any, ...]) -> str:
    shown = ", ".join(str(arg) for arg in args if not isinstance(arg, float))
    return f"{func.__name__}({shown})"


@receiver(job_started)
def report_start(sender: Callable[..., Any], args: tuple[Any, ...], **kwargs: Any) -> None:
    emit(
        "job_started",
        job=describe(sender, args),
        ref=args[0],
        active_threads=threading.active_count(),
    )


@receiver(job_finished)
def report_finish(
    sender: Callable[..., Any], args: tuple[Any, ...], duration: float, **kwargs: Any
) -> None:
    emit("job_finished", job=describe(sender, args), ref=args[0], ms=duration * 1000)


@receiver(job_failed)
def report_failure(
    sender: Callable[..., Any], args: tuple[Any, ...], exception: Exception, **kwargs: Any
) -> None:
    emit("job_failed", job=describe(sender, args), ref=args[0], error=repr(exception))
