"""End to end: real gunicorn and uvicorn servers on 127.0.0.1, loaded by wrk.

gunicorn runs ``gthread`` with 2 workers x 4 threads; uvicorn runs one worker
(see ``server_argv``). Each server process loads one peer (``BENCH_PEER``) and serves three views:
``/none/`` (no jobs), ``/scheduled/`` (5 jobs of 5 ms I/O, handed to the peer)
and ``/inline/`` (the same 5 jobs run in the view). Two loads per view:

- ``paced``: 8 connections, each pausing 50 ms between a response and its next
  request (``paced.lua``): at most 160 requests/s, ordinary traffic well inside
  what every server and raincheck's default pool sustain (its first 4 threads
  alone run 800 jobs/s of 5 ms per process). What it shows is latency.
- ``saturated``: 16 connections, back to back: the most the server can answer,
  measured after 3 s of the same load (by then a raincheck queue that cannot
  keep up is full, and what is measured is the steady state under backpressure).

Every server is stopped (SIGTERM, then SIGKILL of its whole session) before the
next one starts, whatever happens.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
PACED_SCRIPT: Final = Path(__file__).with_name("paced.lua")
READY_TIMEOUT: Final = 30.0
STOP_TIMEOUT: Final = 10.0

SERVERS: Final = ("gunicorn", "uvicorn")
LOADS: Final = {
    "paced": ["-c", "8", "-s", str(PACED_SCRIPT)],
    "saturated": ["-c", "16"],
}


@dataclass(frozen=True)
class Scenario:
    """One row of the HTTP tables: a view, served by a process loading ``peer``."""

    name: str
    peer: str
    path: str
    env: tuple[tuple[str, str], ...] = ()


SCENARIOS: Final = (
    Scenario("none", "none", "/none/"),
    Scenario("inline", "none", "/inline/"),
    Scenario("raincheck", "raincheck", "/scheduled/"),
    Scenario("raincheck_32", "raincheck", "/scheduled/", (("BENCH_MAX_WORKERS", "32"),)),
    Scenario("dj_raincheck", "dj_raincheck", "/scheduled/"),
)


def wrk_version() -> str | None:
    wrk = shutil.which("wrk")
    if wrk is None:
        return None
    result = subprocess.run([wrk, "-v"], capture_output=True, text=True, check=False)
    # "wrk debian/4.1.0-3+b2 [epoll] Copyright (C) 2012 Will Glozer"
    return (result.stdout + result.stderr).splitlines()[0].split(" [")[0].strip()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_argv(server: str, port: int) -> list[str]:
    if server == "gunicorn":
        major = importlib.metadata.version("gunicorn").split(".")[0]
        # gunicorn >= 25 opens a control socket at one path per user by default.
        control = ["--no-control-socket"] if major.isdigit() and int(major) >= 25 else []
        return [
            *(sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}"),
            *control,
            *("-k", "gthread", "--workers", "2", "--threads", "4", "--log-level", "warning"),
            # wrk opens its 16 connections at once and keeps them; a worker that
            # polls first would take most of them (3:1 here, halving req/s at
            # random from run to run). At 8 connections a worker stops accepting.
            *("--worker-connections", "8"),
            "benchmarks.project.wsgi:application",
        ]
    return [
        *(sys.executable, "-m", "uvicorn", "--host", "127.0.0.1", "--port", str(port)),
        # One worker, uvicorn's default: with --workers 2 (uvicorn 0.54) every
        # response, even on a single connection, took >= 40 ms here, the mark of
        # Nagle's algorithm meeting delayed ACKs on the workers' shared socket.
        *("--lifespan", "off", "--log-level", "warning", "--no-access-log"),
        "benchmarks.project.asgi:application",
    ]


class Server:
    """A server process in a session of its own, stopped by ``stop()`` in any case."""

    def __init__(self, server: str, peer: str, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.log = log
        child_env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "benchmarks.project.settings",
            "BENCH_PEER": peer,
            "PYTHONPATH": str(REPO),
            **env,
        }
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                server_argv(server, self.port),
                cwd=REPO,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def wait_ready(self) -> None:
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                break
            with contextlib.suppress(OSError, http.client.HTTPException):
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=1.0)
                try:
                    conn.request("GET", "/none/")
                    if conn.getresponse().status == 200:
                        return
                finally:
                    conn.close()
            time.sleep(0.05)
        raise RuntimeError(f"server not ready; see {self.log}:\n{self.log.read_text()[-3000:]}")

    def _session_stats(self) -> Iterator[tuple[list[str], str]]:
        """``(/proc/PID/stat fields after the name, /proc/PID/status)`` of each process."""
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                if int(fields[3]) == self.process.pid:  # the session id
                    yield fields, (entry / "status").read_text()
            except (OSError, IndexError):
                continue

    def cpu_seconds(self) -> float:
        """CPU time of every process of the server's session so far (master and workers)."""
        ticks = sum(int(f[11]) + int(f[12]) for f, _ in self._session_stats())  # utime + stime
        return ticks / os.sysconf("SC_CLK_TCK")

    def threads_and_rss(self) -> tuple[int, int, int]:
        """Threads and resident KiB of the server's processes, added up, and the most
        threads of any one of them, right now."""
        threads = rss = most = 0
        for _, status in self._session_stats():
            for line in status.splitlines():
                if line.startswith("Threads:"):
                    count = int(line.split()[1])
                    threads += count
                    most = max(most, count)
                elif line.startswith("VmRSS:"):
                    rss += int(line.split()[1])
        return threads, rss, most

    @contextlib.contextmanager
    def sampling(self, interval: float = 0.1) -> Iterator[dict[str, int]]:
        """Track the peaks of ``threads_and_rss()`` while the block runs."""
        # "threads_per_process" is what one worker process's pool and server threads
        # add up to: the sum over processes hides a worker that grows while one idles.
        peak = {"threads": 0, "rss_kib": 0, "threads_per_process": 0}
        done = threading.Event()

        def sample() -> None:
            while not done.is_set():
                threads, rss, most = self.threads_and_rss()
                peak["threads"] = max(peak["threads"], threads)
                peak["rss_kib"] = max(peak["rss_kib"], rss)
                peak["threads_per_process"] = max(peak["threads_per_process"], most)
                done.wait(interval)

        sampler = threading.Thread(target=sample, name="bench-sampler", daemon=True)
        sampler.start()
        try:
            yield peak
        finally:
            done.set()
            sampler.join()

    def stop_gracefully(self, sig: signal.Signals, wait: float) -> float | None:
        """Send the server its graceful stop signal; seconds until it exited, or
        None if it still runs after ``wait`` seconds (``stop()`` then kills it)."""
        started = time.monotonic()
        with contextlib.suppress(ProcessLookupError):
            self.process.send_signal(sig)
        try:
            self.process.wait(wait)
        except subprocess.TimeoutExpired:
            return None
        return time.monotonic() - started

    def stop(self) -> None:
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT)
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(STOP_TIMEOUT)


@contextlib.contextmanager
def running(server: str, peer: str, env: dict[str, str], log: Path) -> Iterator[Server]:
    process = Server(server, peer, env, log)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


_UNITS: Final = {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}


def _seconds(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_wrk(output: str) -> dict[str, Any]:
    """Requests/s, p50/p99 latency and errors from ``wrk --latency``'s report."""

    def find(pattern: str) -> re.Match[str] | None:
        return re.search(pattern, output, re.MULTILINE)

    rps = find(r"^Requests/sec:\s+([\d.]+)")
    p50 = find(r"^\s+50%\s+(\S+)")
    p99 = find(r"^\s+99%\s+(\S+)")
    total = find(r"^\s+(\d+) requests in")
    if rps is None or p50 is None or p99 is None or total is None:
        raise ValueError(f"unexpected wrk output:\n{output}")
    non_2xx = find(r"Non-2xx or 3xx responses: (\d+)")
    socket_errors = find(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
    return {
        "rps": float(rps.group(1)),
        "p50_s": _seconds(p50.group(1)),
        "p99_s": _seconds(p99.group(1)),
        "requests": int(total.group(1)),
        "errors": (int(non_2xx.group(1)) if non_2xx else 0)
        + (sum(int(n) for n in socket_errors.groups()) if socket_errors else 0),
    }


def wrk(url: str, options: Sequence[str], seconds: int, timing: Timing) -> dict[str, Any]:
    command = ["wrk", "-t1", f"-d{seconds}s", "--latency", "--timeout", "10s", *options, url]
    result = subprocess.run(
        command,
        capture_output=True,
        text=True,
        check=True,
        timeout=seconds + 30,
        env={**os.environ, "BENCH_PAUSE_MS": str(timing.pause_ms)},
    )
    return parse_wrk(result.stdout)


@dataclass(frozen=True)
class Timing:
    """Seconds of each wrk run (wrk takes whole seconds)."""

    warmup: int = 1
    paced: int = 6
    # A saturating load fills raincheck's queue (10,000 jobs by default) within
    # a few seconds; the figure is what comes after, once backpressure holds.
    saturated_warmup: int = 3
    saturated: int = 3
    pause_ms: int = 50


Runs = dict[str, dict[str, dict[str, list[dict[str, Any]]]]]


def run(*, passes: int, timing: Timing, raw: Path, log: Callable[[str], None]) -> Runs:
    """``{server: {load: {scenario: [one result per pass]}}}``."""
    results: Runs = {
        server: {load: {s.name: [] for s in SCENARIOS} for load in LOADS} for server in SERVERS
    }
    # One server process per (peer, settings); its scenarios run one after another.
    groups: dict[tuple[str, tuple[tuple[str, str], ...]], list[Scenario]] = {}
    for scenario in SCENARIOS:
        groups.setdefault((scenario.peer, scenario.env), []).append(scenario)
    order = list(groups.items())
    for n in range(passes):
        for server in SERVERS:
            # Rotate the order from pass to pass, so no peer always runs first.
            for (peer, env), scenarios in order[n % len(order) :] + order[: n % len(order)]:
                tag = "-".join([server, peer, *(f"{k}{v}" for k, v in env), str(n)])
                with running(server, peer, dict(env), raw / f"{tag}.log") as process:
                    for scenario in scenarios:
                        # Paced: a saturating warm-up would leave a backlog of jobs.
                        wrk(process.url(scenario.path), LOADS["paced"], timing.warmup, timing)
                    for load in LOADS:
                        for scenario in scenarios:
                            result = measure(process, scenario.path, load, timing)
                            results[server][load][scenario.name].append(result)
                            log(f"  http {server:8} {load:9} {scenario.name:13} {summary(result)}")
    return results


def measure(process: Server, path: str, load: str, timing: Timing) -> dict[str, Any]:
    """One measured wrk run of ``load`` on ``path`` (after its warm-up, if saturated),
    with the server's CPU per request and its peak threads and memory meanwhile."""
    url = process.url(path)
    if load == "saturated":
        wrk(url, LOADS[load], timing.saturated_warmup, timing)
    seconds = timing.paced if load == "paced" else timing.saturated
    cpu = process.cpu_seconds()
    with process.sampling() as peak:
        result = wrk(url, LOADS[load], seconds, timing)
    cpu = process.cpu_seconds() - cpu
    result["server_cpu_s_per_request"] = cpu / max(result["requests"], 1)
    result["server_peak_threads"] = peak["threads"]
    result["server_peak_rss_kib"] = peak["rss_kib"]
    result["server_peak_threads_per_process"] = peak["threads_per_process"]
    return result


def summary(result: dict[str, Any]) -> str:
    return (
        f"{result['rps']:8.0f} req/s  p50 {result['p50_s'] * 1e3:6.2f} ms"
        f"  p99 {result['p99_s'] * 1e3:6.2f} ms"
    )
