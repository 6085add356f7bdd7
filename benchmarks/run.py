"""Run every benchmark, write benchmarks/results.json, then render the report.

``make bench`` runs ``python -m benchmarks.run``. Each pytest-benchmark session
runs in a process of its own, for one peer; the micro benchmarks run ``--passes``
times with the peers in a rotating order, and the report takes the median of
the passes, so a burst of noise from other processes hits one pass of one peer
rather than a whole column. ``--only http`` (etc.) re-measures one part and
keeps the others from the previous results.json; ``--only throughput`` runs the
I/O-bound, async and CPU-bound saturated servers and their graceful stops
(``throughput.py``).
"""

from __future__ import annotations

import argparse
import datetime
import importlib.metadata
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Final

from benchmarks import http_load, peers, throughput

REPO: Final = Path(__file__).resolve().parent.parent
RAW: Final = REPO / "benchmarks" / ".raw"
RESULTS: Final = REPO / "benchmarks" / "results.json"
PARTS: Final = ("micro", "scaling", "overload", "http", "throughput")
SUBPROCESS_TIMEOUT: Final = 600
MICRO: Final = "benchmarks/bench_micro.py"
SCALING: Final = "benchmarks/bench_scaling.py"

Entry = dict[str, Any]

_started = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - _started:6.1f} s] {message}", flush=True)


def pytest_session(peer: str, name: str, *selection: str) -> dict[str, Entry]:
    """Run pytest-benchmark tests for one peer in a fresh process; their results by test."""
    out = RAW / f"{name}.json"
    command = [
        *(sys.executable, "-m", "pytest", *selection),
        # raincheck's pytest plugin imports raincheck, which would listen to
        # request_finished next to the peer; pytest's log capture would keep
        # every warning of the overload runs.
        *("-p", "no:raincheck", "-p", "no:logging", "-p", "no:cacheprovider"),
        *("--ds=benchmarks.project.settings", f"--benchmark-json={out}", "-q"),
        "--benchmark-columns=median,iqr,rounds",
    ]
    env = {**os.environ, "BENCH_PEER": peer, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        command,
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=SUBPROCESS_TIMEOUT,
    )
    (RAW / f"{name}.log").write_text(f"$ {' '.join(command)}\n{result.stdout}{result.stderr}")
    if result.returncode != 0:
        raise RuntimeError(f"{name} failed; see {RAW / (name + '.log')}:\n{result.stdout[-3000:]}")
    entries: dict[str, Entry] = {}
    for bench in json.loads(out.read_text())["benchmarks"]:
        stats = bench["stats"]
        extra = dict(bench["extra_info"])
        calls = extra.pop("calls", 1)
        entries[bench["name"]] = {
            "median_s": stats["median"] / calls,
            "iqr_s": stats["iqr"] / calls,
            "min_s": stats["min"] / calls,
            "rounds": stats["rounds"],
            "calls_per_round": calls,
            **extra,
        }
    return entries


def run_micro(passes: int) -> dict[str, dict[str, list[Entry]]]:
    """``{peer: {test: [one entry per pass]}}``."""
    results: dict[str, dict[str, list[Entry]]] = {peer: {} for peer in peers.PEERS}
    for n in range(passes):
        order = peers.PEERS[n % len(peers.PEERS) :] + peers.PEERS[: n % len(peers.PEERS)]
        for peer in order:
            log(f"micro pass {n + 1}/{passes}: {peer}")
            for test, entry in pytest_session(peer, f"micro-{peer}-{n}", MICRO).items():
                results[peer].setdefault(test, []).append(entry)
    return results


def run_scaling() -> dict[str, Entry]:
    log("scaling: jobs per request, workers")
    return pytest_session("raincheck", "scaling", SCALING, "-k", "not overload")


def run_overload() -> dict[str, Entry]:
    results: dict[str, Entry] = {}
    for case in ("block", "caller_runs", "drop", "drop_oldest", "unbounded"):
        log(f"overload: {case}")
        # One process per case: each peak of memory is that case's own.
        node = f"{SCALING}::test_overload[{case}]"
        entries = pytest_session("raincheck", f"overload-{case}", node)
        results[case] = entries[f"test_overload[{case}]"]
    return results


def machine() -> dict[str, Any]:
    def version(package: str) -> str | None:
        try:
            return importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            return None

    cpu_model = None
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu_model = line.split(":", 1)[1].strip()
                break
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    return {
        "cpus": os.cpu_count(),
        "cpu_model": cpu_model,
        "platform": platform.platform(),
        "python": "Python " + sys.version.replace("\n", " "),  # as python -VV says it
        "implementation": platform.python_implementation(),
        "packages": {
            name: version(name)
            for name in (
                "django-raincheck",
                "dj-raincheck",
                "django",
                "gunicorn",
                "uvicorn",
                "pytest-benchmark",
                "matplotlib",
            )
        },
        "wrk": http_load.wrk_version(),
        "commit": commit or None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.run", description=__doc__)
    parser.add_argument("--only", default=",".join(PARTS), help="comma-separated parts")
    parser.add_argument("--passes", type=int, default=3, help="passes of the micro benchmarks")
    parser.add_argument("--http-passes", type=int, default=2)
    parser.add_argument("--paced-seconds", type=int, default=6, help="per view, whole seconds")
    parser.add_argument("--saturated-seconds", type=int, default=3, help="per view, warmed up")
    parser.add_argument(
        "--saturated-warmup", type=int, default=3, help="saturating load before each measurement"
    )
    parser.add_argument(
        "--results", type=Path, default=RESULTS, help="read and write this file (smoke runs)"
    )
    parser.add_argument("--no-report", action="store_true", help="do not render docs/")
    args = parser.parse_args(argv)
    parts = [part for part in args.only.split(",") if part]
    unknown = set(parts) - set(PARTS)
    if unknown:
        parser.error(f"unknown parts {sorted(unknown)}; choose from {', '.join(PARTS)}")
    if {"http", "throughput"} & set(parts) and shutil.which("wrk") is None:
        parser.error(
            "the HTTP benchmarks need wrk: apt-get install wrk (or --only without http, throughput)"
        )

    RAW.mkdir(exist_ok=True)
    results_file: Path = args.results
    results: dict[str, Any] = json.loads(results_file.read_text()) if results_file.exists() else {}
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    log(f"running {', '.join(parts)} (raw output in {RAW.relative_to(REPO)}/)")
    if "micro" in parts:
        results["micro"] = run_micro(args.passes)
    if "scaling" in parts:
        results["scaling"] = run_scaling()
    if "overload" in parts:
        results["overload"] = run_overload()
    timing = http_load.Timing(
        paced=args.paced_seconds,
        saturated_warmup=args.saturated_warmup,
        saturated=args.saturated_seconds,
    )
    if "http" in parts:
        log("http: gunicorn and uvicorn, with wrk")
        results["http"] = http_load.run(passes=args.http_passes, timing=timing, raw=RAW, log=log)
    if "throughput" in parts:
        log("throughput: I/O-bound, async and CPU-bound jobs at saturation, graceful stops")
        results["throughput"] = throughput.run(
            passes=args.http_passes, timing=timing, raw=RAW, log=log
        )
    results["run"] = {
        "command": "make bench",
        "parts": parts,
        "passes": args.passes,
        "http_passes": args.http_passes,
        "paced_seconds": args.paced_seconds,
        "saturated_seconds": args.saturated_seconds,
        "saturated_warmup": args.saturated_warmup,
        "started": started.isoformat(timespec="seconds"),
        "duration_s": round(time.monotonic() - _started, 1),
        "load_average_before": [round(x, 2) for x in load_before],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    results["machine"] = machine()
    results_file.write_text(json.dumps(results, indent=1, sort_keys=True) + "\n")
    log(f"wrote {results_file}")
    if not args.no_report:
        from benchmarks import report

        report.main(["--results", str(results_file)])
    return 0


if __name__ == "__main__":
    sys.exit(main())
