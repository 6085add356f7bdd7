"""Jobs the views scheduled and jobs that ran, per server process, written at its exit.

With ``BENCH_EXIT_DIR`` set (``benchmarks/throughput.py`` sets it), each server
process writes ``<pid>.json`` there as it exits: these counts, and for
raincheck its ``stats()`` and ``RAINCHECK_MAX_WORKERS``. That is how a
graceful stop is checked: every job scheduled ran, counted by the jobs
themselves rather than by the library under test.

The counts must be read *after* raincheck's exit drain, which is an ``atexit``
hook too. ``atexit`` runs hooks last registered first, so that hook is
registered before raincheck is imported: from the settings module, which
Django imports before any app. The drain forgets the pool, and with it the
pool's figures (``stats().workers``, ``peak_workers``, ``queued``), so a
second hook, registered once raincheck is loaded, reads them just before.
"""

from __future__ import annotations

import atexit
import dataclasses
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Final

EXIT_DIR_ENV: Final = "BENCH_EXIT_DIR"


class Tally:
    """A count that many threads add to."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.value = 0

    def add(self) -> None:
        # A lock, not a bare += (which can lose counts between threads): about
        # 0.1 µs a job, nothing next to the jobs' 0.5 to 5 ms.
        with self._lock:
            self.value += 1


SCHEDULED: Final = Tally()
RAN: Final = Tally()


# raincheck.stats() as the process began to exit, before the drain.
_before_drain: dict[str, Any] = {}


def record() -> dict[str, Any]:
    """This process's counts; raincheck's own figures if it is loaded."""
    entry: dict[str, Any] = {
        "pid": os.getpid(),
        "scheduled": SCHEDULED.value,
        "ran": RAN.value,
        "raincheck": None,
        "raincheck_before_drain": _before_drain or None,
        "max_workers": None,
    }
    if "raincheck" in sys.modules:
        import raincheck
        from raincheck import conf

        entry["raincheck"] = dataclasses.asdict(raincheck.stats())
        entry["max_workers"] = conf.get().max_workers
    return entry


def _write_at_exit(directory: str) -> None:
    Path(directory, f"{os.getpid()}.json").write_text(json.dumps(record()))


def _read_before_drain() -> None:
    import raincheck

    _before_drain.update(dataclasses.asdict(raincheck.stats()))


def register() -> None:
    """Write this process's record at exit, after raincheck's drain (if ``BENCH_EXIT_DIR``)."""
    directory = os.environ.get(EXIT_DIR_ENV)
    if not directory:
        return
    if "raincheck.drain" in sys.modules:
        # Registered after raincheck's drain, the hook would run before it and
        # count the jobs the drain has yet to run as lost.
        raise RuntimeError("benchmarks.project.tally must be registered before raincheck loads")
    atexit.register(_write_at_exit, directory)


def register_before_drain() -> None:
    """Once raincheck is loaded: read its pool's figures at exit, before its drain."""
    if os.environ.get(EXIT_DIR_ENV) and "raincheck.drain" in sys.modules:
        atexit.register(_read_before_drain)
