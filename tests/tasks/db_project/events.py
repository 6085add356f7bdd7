"""One line per event, appended to a file both processes share."""

from __future__ import annotations

import os

from django.conf import settings


def record(event: str) -> None:
    # One short write per line, to a file opened for appending: lines from two
    # processes never interleave.
    with open(settings.DATA_DIR / "events.txt", "a") as file:
        file.write(f"{event} pid={os.getpid()}\n")
