"""One line per event, appended to a file both processes share; and the same
event with its wall-clock time to another, for benchmarks/durability.py."""

from __future__ import annotations

import os
import time

from django.conf import settings


def record(event: str) -> None:
    # One short write per line, to a file opened for appending: lines from two
    # processes never interleave.
    with open(settings.DATA_DIR / "events.txt", "a") as file:
        file.write(f"{event} pid={os.getpid()}\n")
    with open(settings.DATA_DIR / "times.txt", "a") as file:
        file.write(f"{time.time():.6f} {event}\n")
