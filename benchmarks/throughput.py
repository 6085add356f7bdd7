"""Throughput under I/O-bound and CPU-bound jobs, each run ended by a graceful stop.

``python -m benchmarks.run --only throughput``. Three questions, each asked of
a few setups side by side, each setup in a server process of its own:

- ``io``: gunicorn ``gthread`` 2 x 4 serving ``/scheduled/`` (5 jobs of 5 ms
  ``time.sleep``): raincheck's default elastic pool, raincheck with the old
  fixed-size pool (6 threads, ``BENCH_FIXED_POOL``), dj-raincheck.
- ``async``: uvicorn serving an async view that schedules 5 ``async def`` jobs
  of 5 ms ``asyncio.sleep``: raincheck, the same view without jobs,
  the same jobs as bare tasks on uvicorn's own loop (what a view could do
  without a library, nothing draining them), dj-raincheck (which calls the
  coroutine function and never awaits it: none of its jobs run).
- ``cpu``: gunicorn ``gthread`` 2 x 4 serving ``/cpu/`` (5 jobs of about 0.5 ms
  of pure-Python work): raincheck's default pool vs the old fixed pool of 6.

Each server gets the HTTP part's paced load, then its saturating load (see
``http_load``), sampling the threads of each of its processes. Then it is
stopped the graceful way for that server (gunicorn: SIGTERM; uvicorn: SIGINT,
as SIGTERM ends it without exit hooks), and the run records how long it took
to exit and, from the files its processes write at exit
(``project/tally.py``), whether every job scheduled in its life ran.
"""

from __future__ import annotations

import json
import signal
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from benchmarks import http_load, jobs

# RAINCHECK_SHUTDOWN_TIMEOUT of every server here: what a graceful stop is judged by.
SHUTDOWN_TIMEOUT: Final = 2.0
# What a server may take beyond raincheck's drain to exit: its own shutdown
# (gunicorn's master reaping its workers, Python's finalisation).
STOP_MARGIN: Final = 2.0
# After this much longer the server is killed and the stop recorded as failed.
STOP_PATIENCE: Final = 15.0
STOP_SIGNALS: Final = {"gunicorn": signal.SIGTERM, "uvicorn": signal.SIGINT}
# Processes that load the project, and so write an exit record (gunicorn's
# master does not load the app).
PROCESSES: Final = {"gunicorn": 2, "uvicorn": 1}


@dataclass(frozen=True)
class Case:
    """One setup: a view, under a server, in processes loading ``peer``."""

    name: str
    question: str
    server: str
    peer: str
    path: str
    env: tuple[tuple[str, str], ...] = ()


# raincheck's pool before it was elastic: 6 threads (its default then), no trials.
FIXED_POOL: Final = (("BENCH_MAX_WORKERS", "6"), ("BENCH_FIXED_POOL", "1"))
CASES: Final = (
    Case("io_raincheck", "io", "gunicorn", "raincheck", "/scheduled/"),
    Case("io_raincheck_6", "io", "gunicorn", "raincheck", "/scheduled/", FIXED_POOL),
    Case("io_dj_raincheck", "io", "gunicorn", "dj_raincheck", "/scheduled/"),
    Case("async_none", "async", "uvicorn", "none", "/async/none/"),
    Case("async_raincheck", "async", "uvicorn", "raincheck", "/async/scheduled/"),
    Case("async_servers_loop", "async", "uvicorn", "none", "/async/tasks/"),
    Case("async_dj_raincheck", "async", "uvicorn", "dj_raincheck", "/async/scheduled/"),
    Case("cpu_raincheck", "cpu", "gunicorn", "raincheck", "/cpu/"),
    Case("cpu_raincheck_6", "cpu", "gunicorn", "raincheck", "/cpu/", FIXED_POOL),
)

Results = dict[str, Any]


def cpu_job_seconds(repeats: int = 200) -> float:
    """The median time of one CPU-bound job here, in this interpreter, unloaded."""
    times = []
    for i in range(repeats):
        started = time.perf_counter()
        jobs.cpu_500us(i)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def graceful_stop(process: http_load.Server, server: str, exits: Path) -> dict[str, Any]:
    """Stop ``process`` gracefully; how long it took, and its exit records added up."""
    limit = SHUTDOWN_TIMEOUT + STOP_MARGIN
    sig = STOP_SIGNALS[server]
    took = process.stop_gracefully(sig, limit + STOP_PATIENCE)
    records = [json.loads(path.read_text()) for path in sorted(exits.glob("*.json"))]
    stats = [r["raincheck"] for r in records if r["raincheck"] is not None]
    # The pool's figures as the stop began (the drain forgets the pool).
    before = [r["raincheck_before_drain"] for r in records if r["raincheck_before_drain"]]
    caps = [r["max_workers"] for r in records if r["max_workers"] is not None]
    return {
        "signal": sig.name,
        "seconds": took,
        "limit_s": limit,
        "in_time": took is not None and took <= limit,
        "processes": len(records),
        "processes_expected": PROCESSES[server],
        "scheduled": sum(r["scheduled"] for r in records),
        "ran": sum(r["ran"] for r in records),
        # raincheck's own account, per process: what it dropped, before and after the drain.
        "raincheck": stats or None,
        "raincheck_before_drain": before or None,
        "max_workers": max(caps) if caps else None,
        "peak_workers": max(s["peak_workers"] for s in before) if before else None,
        "queued_at_stop": sum(s["queued"] for s in before) if before else None,
    }


def run_case(
    case: Case, timing: http_load.Timing, raw: Path, tag: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """Paced, then saturated, then a graceful stop: one server process's life."""
    with tempfile.TemporaryDirectory(prefix="exits-", dir=raw) as exits:
        env = {
            **dict(case.env),
            "BENCH_EXIT_DIR": exits,
            "BENCH_SHUTDOWN_TIMEOUT": str(SHUTDOWN_TIMEOUT),
        }
        with http_load.running(case.server, case.peer, env, raw / f"{tag}.log") as process:
            # Paced: a saturating warm-up would leave a backlog of jobs.
            http_load.wrk(process.url(case.path), http_load.LOADS["paced"], timing.warmup, timing)
            result: dict[str, Any] = {}
            for load in http_load.LOADS:
                result[load] = http_load.measure(process, case.path, load, timing)
                log(f"  throughput {case.name:18} {load:9} {http_load.summary(result[load])}")
            result["stop"] = stop = graceful_stop(process, case.server, Path(exits))
        took = "did not exit" if stop["seconds"] is None else f"exited in {stop['seconds']:.2f} s"
        log(
            f"  throughput {case.name:18} stop      {stop['signal']}: {took}, "
            f"ran {stop['ran']:,} of {stop['scheduled']:,} jobs "
            f"({stop['processes']}/{stop['processes_expected']} processes reported)"
        )
    return result


def run(*, passes: int, timing: http_load.Timing, raw: Path, log: Callable[[str], None]) -> Results:
    """``{"cases": {case: [one result per pass]}, ...}``, and what they were run with."""
    cases: dict[str, list[dict[str, Any]]] = {case.name: [] for case in CASES}
    for n in range(passes):
        # Rotate the order from pass to pass, so no setup always runs first.
        for case in CASES[n % len(CASES) :] + CASES[: n % len(CASES)]:
            tag = f"throughput-{case.name}-{n}"
            cases[case.name].append(run_case(case, timing, raw, tag, log))
    return {
        "cases": cases,
        "cpu_job_s": cpu_job_seconds(),
        "shutdown_timeout_s": SHUTDOWN_TIMEOUT,
        "stop_margin_s": STOP_MARGIN,
    }
