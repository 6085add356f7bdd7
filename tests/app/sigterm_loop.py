"""A management-command-like process that schedules jobs in a loop until SIGTERM.

``python -m tests.app.sigterm_loop EVENTS``: every job handed off is written
to EVENTS as ``scheduled N`` once ``.schedule()`` returns, and as ``ran N``
when it has run; tests/test_sigterm_anytime.py sends SIGTERM at random moments.
"""

from __future__ import annotations

import os
import sys

import django
from django.conf import settings

_events = -1


def _write(line: str) -> None:
    # One write() per line on an O_APPEND descriptor: lines never interleave.
    os.write(_events, f"{line}\n".encode())


def main(path: str) -> None:
    global _events
    _events = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    settings.configure(
        INSTALLED_APPS=["raincheck"],
        RAINCHECK_DRAIN_ON_SIGTERM=True,
        RAINCHECK_SHUTDOWN_TIMEOUT=5.0,
        RAINCHECK_MAX_QUEUE=0,
        LOGGING_CONFIG=None,
    )
    django.setup()
    from raincheck import raincheck

    @raincheck
    def job(number: int) -> None:
        _write(f"ran {number}")

    globals()["job"] = job
    number = 0
    while True:
        job.schedule(number)
        _write(f"scheduled {number}")
        number += 1


if __name__ == "__main__":
    main(sys.argv[1])
