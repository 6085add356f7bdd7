"""The jobs every peer runs. Module-level functions: Django's Tasks framework
only takes those."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Final

# Every finished job appends here (list.append is atomic), which is how peers
# without a wait_idle() tell that a burst has run to the end.
DONE: list[int] = []
# Threads alive while each job ran: the peak is the burst's peak thread count.
THREADS_SEEN: list[int] = []
# Names of the threads that ran a job (thread names are numbered, never reused).
THREAD_NAMES: set[str] = set()


def trivial(i: int) -> None:
    """The cheapest job there is: what is left is the peer's own cost."""
    DONE.append(i)


def counting(i: int) -> None:
    """``trivial``, also noting which thread runs it and how many are alive (untimed)."""
    THREADS_SEEN.append(threading.active_count())
    THREAD_NAMES.add(threading.current_thread().name)
    DONE.append(i)


def io_5ms(i: int) -> None:
    """5 ms of I/O: an e-mail, a webhook, a cache refill."""
    time.sleep(0.005)


async def async_io_5ms(i: int) -> None:
    """5 ms of I/O awaited: an HTTP API called with an async client."""
    await asyncio.sleep(0.005)


# About 0.5 ms of the loop below in CPython 3.13 on the machine of docs/benchmarks.rst;
# a fixed amount of work rather than a fixed time, so that a faster machine does
# it faster (benchmarks/throughput.py records its time in each run).
CPU_LOOP: Final = 9_000


def cpu_500us(i: int) -> None:
    """About 0.5 ms of pure-Python work, holding the GIL throughout: a template
    rendered, a report computed."""
    total = 0
    for n in range(CPU_LOOP):
        total += n * n


def io_1ms(i: int) -> None:
    time.sleep(0.001)
    DONE.append(i)


def io_with_payload(i: int, payload: bytes) -> None:
    """0.1 ms of I/O carrying 1 KiB, so that queued jobs show in memory."""
    time.sleep(0.0001)
