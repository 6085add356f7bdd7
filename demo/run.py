"""raincheck's demo: a real Django project under gunicorn on 127.0.0.1, with a timeline.

Run it with ``make demo`` (or ``python demo/run.py`` in a virtualenv that has
Django, gunicorn and raincheck). It shows three things, and exits non-zero if
any of them does not hold:

1. each response is complete before its jobs start, and one request's jobs
   never wait for another, slower request;
2. a burst of 20 concurrent requests x 5 jobs runs on at most 4 pool threads;
3. on SIGTERM, gunicorn's worker finishes every queued job before it exits.

The server side reports what happens by appending JSON lines to a file named
in ``RAINCHECK_DEMO_EVENTS`` (see ``demo/events.py``); this script uses only
the standard library.
"""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MAX_WORKERS = 4  # RAINCHECK_MAX_WORKERS, handed to demo/settings.py
SERVER_THREADS = 4
EVENTS_ENV_VAR = "RAINCHECK_DEMO_EVENTS"

Event = dict[str, Any]


class DemoError(Exception):
    """Something the demo needs did not happen (the server did not start, ...)."""


# -- talking to the server ----------------------------------------------------


@dataclass
class Response:
    path: str
    status: int
    body: bytes
    sent: float
    received: float


def get(port: int, path: str, timeout: float = 10.0) -> Response:
    sent = time.time()
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        connection.request("GET", path, headers={"Connection": "close"})
        reply = connection.getresponse()
        body = reply.read()
    finally:
        connection.close()
    return Response(path, reply.status, body, sent, time.time())


def get_all(port: int, paths: list[str]) -> list[Response]:
    """GET every path at once, each from its own thread; return them in order."""
    barrier = threading.Barrier(len(paths))
    results: dict[int, Response] = {}
    errors: list[BaseException] = []

    def fetch(index: int, path: str) -> None:
        try:
            barrier.wait()
            results[index] = get(port, path)
        except BaseException as exc:
            errors.append(exc)

    threads = [
        threading.Thread(target=fetch, args=(i, p), daemon=True) for i, p in enumerate(paths)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    if errors or len(results) != len(paths):
        raise DemoError(f"{len(paths) - len(results)} request(s) failed: {errors[:1]!r}")
    return [results[i] for i in range(len(paths))]


def read_events(path: Path) -> list[Event]:
    """Every complete line written so far (a line being written is left for later)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    complete = text[: text.rfind("\n") + 1]
    return [json.loads(line) for line in complete.splitlines() if line]


def wait_for_events(
    path: Path, done: Callable[[list[Event]], bool], timeout: float, what: str
) -> list[Event]:
    deadline = time.monotonic() + timeout
    while True:
        events = read_events(path)
        if done(events):
            return events
        if time.monotonic() > deadline:
            raise DemoError(f"gave up after {timeout:.0f} s waiting for {what}")
        time.sleep(0.02)


# -- printing -----------------------------------------------------------------


class Timeline:
    """Prints lines like ``+  12 ms  response  /signup?user=ann complete (200)``."""

    def __init__(self, origin: float) -> None:
        self.origin = origin
        self.lines: list[tuple[float, int, str, str]] = []

    def add(self, t: float, kind: str, text: str) -> None:
        self.lines.append((t, len(self.lines), kind, text))

    def print(self) -> None:
        for t, _, kind, text in sorted(self.lines):
            print(f"  +{(t - self.origin) * 1000:5.0f} ms  {kind:<9} {text}")
        self.lines.clear()


def heading(text: str) -> None:
    print(f"\n{text}\n{'-' * len(text)}")


def summary(label: str, value: object) -> None:
    print(f"  {label + ':':<29} {value}")


@dataclass
class Checks:
    failures: list[str] = field(default_factory=list)

    def expect(self, ok: bool, claim: str, otherwise: str = "") -> None:
        """Print the claim with ok or FAILED, and remember the failures."""
        print(f"  {'ok' if ok else 'FAILED':>6}  {claim}" + (f": {otherwise}" if not ok else ""))
        if not ok:
            self.failures.append(claim + (f": {otherwise}" if otherwise else ""))


def of_kind(events: Iterable[Event], kind: str, refs: Iterable[str] = ()) -> list[Event]:
    wanted = set(refs)
    return [e for e in events if e["kind"] == kind and (not wanted or e.get("ref") in wanted)]


def most_at_once(starts: list[Event], finishes: list[Event]) -> int:
    """The most jobs running at the same moment, from their own start/finish times."""
    # At equal times a finish counts first: a worker finishes one job, then starts the next.
    changes = sorted([(e["t"], 1) for e in starts] + [(e["t"], -1) for e in finishes])
    running = highest = 0
    for _, change in changes:
        running += change
        highest = max(highest, running)
    return highest


def completion_times(events: Iterable[Event], refs_by_path: dict[str, str]) -> dict[str, float]:
    """When the server had sent each request's whole response, by the request's ref."""
    return {
        refs_by_path[e["path"]]: e["t"]
        for e in events
        if e["kind"] == "response" and e.get("path") in refs_by_path
    }


def expect_after_own_response(
    checks: Checks, starts: list[Event], completed: dict[str, float], expected: int
) -> None:
    early = [e["job"] for e in starts if e["t"] < completed.get(e["ref"], float("inf"))]
    checks.expect(
        len(starts) == expected and not early,
        "every job started after its own response was complete",
        f"started too early: {', '.join(early[:5])}"
        if early
        else f"{len(starts)} of {expected} started",
    )


class StatsSampler:
    """Polls ``/stats`` (``raincheck.stats()`` as JSON) from a thread while in use."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.samples: list[tuple[float, dict[str, int]]] = []
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.sample, daemon=True)

    def sample(self) -> None:
        while not self.stopped.is_set():
            try:
                reply = get(self.port, "/stats")
            except OSError:
                continue
            self.samples.append((reply.received, json.loads(reply.body)))
            self.stopped.wait(0.03)

    def __enter__(self) -> StatsSampler:
        self.thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stopped.set()
        self.thread.join(5)


# -- the three parts ------------------------------------------------------------


def after_the_response(port: int, events_path: Path, checks: Checks) -> None:
    heading("1. Jobs run after the response, each request's after its own")
    print(
        "  ann's page takes 300 ms to render and bob's 20 ms; both requests start together.\n"
        "  Each view schedules 3 jobs before it renders (one of them is an async function).\n"
        '  "response complete" is gunicorn closing the response after its last byte.'
    )
    paths = {
        "ann": "/signup?user=ann&render_ms=300",
        "bob": "/signup?user=bob&render_ms=20",
    }
    responses = get_all(port, list(paths.values()))
    events = wait_for_events(
        events_path,
        lambda evs: len(of_kind(evs, "job_finished", paths)) >= 6,
        10,
        "the 6 signup jobs to finish",
    )
    timeline = Timeline(min(r.sent for r in responses))
    for r in responses:
        timeline.add(r.sent, "request", f"GET {r.path}")
    by_path = {path: user for user, path in paths.items()}
    completed = completion_times(events, by_path)
    for e in events:
        if e.get("path") in by_path:
            if e["kind"] == "scheduled":
                timeline.add(e["t"], "view", f"{e['path']} scheduled {e['count']} jobs")
            elif e["kind"] == "response":
                timeline.add(e["t"], "response", f"{e['path']} complete ({e['status']})")
    starts = of_kind(events, "job_started", paths)
    finishes = of_kind(events, "job_finished", paths)
    for e in starts:
        timeline.add(e["t"], "job", f"{e['job']} started on {e['thread']} (pid {e['pid']})")
    for e in finishes:
        timeline.add(e["t"], "job", f"{e['job']} finished ({e['ms']:.0f} ms)")
    timeline.print()
    print()
    checks.expect(
        all(r.status == 200 for r in responses),
        "both requests answered 200",
        ", ".join(f"{r.path}: {r.status}" for r in responses),
    )
    expect_after_own_response(checks, starts, completed, 6)
    bob_started = [e["t"] for e in starts if e["ref"] == "bob"]
    checks.expect(
        bool(bob_started) and "ann" in completed and max(bob_started) < completed["ann"],
        "bob's jobs did not wait for ann's slower response",
    )


def bounded_burst(port: int, events_path: Path, checks: Checks) -> None:
    requests, per_request = 20, 5
    total = requests * per_request
    heading(f"2. A burst: {requests} concurrent requests x {per_request} jobs, on a pool of 4")
    print(
        f"  Each job takes 40 ms. One thread per job would start {total} threads;\n"
        f"  raincheck queues them for at most {MAX_WORKERS} pool threads "
        f"(RAINCHECK_MAX_WORKERS={MAX_WORKERS})."
    )
    refs = [f"burst-{i:02d}" for i in range(1, requests + 1)]
    by_path = {f"/burst?ref={ref}&jobs={per_request}": ref for ref in refs}
    with StatsSampler(port) as sampler:
        responses = get_all(port, list(by_path))
        events = wait_for_events(
            events_path,
            lambda evs: len(of_kind(evs, "job_finished", refs)) >= total,
            20,
            f"the {total} burst jobs to finish",
        )
    final = json.loads(get(port, "/stats").body)

    origin = min(r.sent for r in responses)
    timeline = Timeline(origin)
    timeline.add(origin, "burst", f"{requests} requests sent at once")
    received = sorted(r.received for r in responses)
    timeline.add(received[0], "response", f"first of {requests} complete on the client")
    timeline.add(received[-1], "response", f"last of {requests} complete on the client")
    starts = of_kind(events, "job_started", refs)
    finishes = of_kind(events, "job_finished", refs)
    timeline.add(min(e["t"] for e in starts), "job", "first job started")
    during = [(t, s) for t, s in sampler.samples if t >= origin]
    shown = -1.0
    for t, s in during:
        if t - shown >= 0.15 and (s["queued"] or s["running"]):
            shown = t
            timeline.add(
                t,
                "stats",
                f"queued={s['queued']:<3} running={s['running']} workers={s['workers']} "
                f"succeeded={s['succeeded']}",
            )
    timeline.add(max(e["t"] for e in finishes), "job", f"{len(finishes)}/{total} finished")
    timeline.print()
    print()
    threads = sorted({e["thread"] for e in starts})
    at_once = most_at_once(starts, finishes)
    most_workers = max([s["workers"] for _, s in during] + [final["workers"]])
    summary("pool threads that ran jobs", ", ".join(threads))
    summary("most jobs running at once", at_once)
    summary("most jobs queued at once", max((s["queued"] for _, s in during), default=0))
    summary(
        "threads in the process, max",
        f"{max(e['active_threads'] for e in starts)} "
        f"(main + {SERVER_THREADS} gunicorn + raincheck's, as the jobs saw it)",
    )
    summary(
        "raincheck.stats(), whole run",
        ", ".join(
            f"{k}={final[k]}" for k in ("scheduled", "succeeded", "failed", "dropped", "workers")
        ),
    )
    print()
    checks.expect(
        all(r.status == 200 for r in responses),
        f"all {requests} requests answered 200",
    )
    checks.expect(len(finishes) == total, f"all {total} jobs finished", f"{len(finishes)} finished")
    expect_after_own_response(checks, starts, completion_times(events, by_path), total)
    checks.expect(
        len(threads) <= MAX_WORKERS and at_once <= MAX_WORKERS and most_workers <= MAX_WORKERS,
        f"never more than {MAX_WORKERS} pool threads",
        f"{len(threads)} thread names, {at_once} jobs at once, stats().workers={most_workers}",
    )


def drain_on_sigterm(
    server: subprocess.Popen[bytes], port: int, events_path: Path, checks: Checks
) -> None:
    jobs, ms = 20, 100
    heading(f"3. SIGTERM: the {jobs} queued jobs finish before the process exits")
    print(
        f"  One request schedules {jobs} jobs of {ms} ms (at least {jobs * ms // MAX_WORKERS} ms "
        f"of work for {MAX_WORKERS} threads);\n"
        "  the gunicorn master gets SIGTERM as soon as the response is complete."
    )
    path = f"/batch?ref=nightly&jobs={jobs}&ms={ms}"
    response = get(port, path)
    server.send_signal(signal.SIGTERM)
    signalled = time.time()
    try:
        exit_code = server.wait(timeout=25)
    except subprocess.TimeoutExpired:
        raise DemoError("gunicorn did not exit within 25 s of SIGTERM") from None
    exited = time.time()
    events = wait_for_events(
        events_path,
        lambda evs: bool(of_kind(evs, "worker_exit")),
        5,
        "gunicorn to report its worker's exit",
    )

    timeline = Timeline(response.sent)
    timeline.add(response.sent, "request", f"GET {path}")
    for e in events:
        if e.get("path") == path:
            if e["kind"] == "scheduled":
                timeline.add(e["t"], "view", f"scheduled {e['count']} jobs")
            elif e["kind"] == "response":
                timeline.add(
                    e["t"], "hand-off", "the server closes the response: the jobs go to the pool"
                )
    timeline.add(response.received, "response", f"complete on the client ({response.status})")
    timeline.add(signalled, "signal", f"SIGTERM sent to the gunicorn master (pid {server.pid})")
    starts = of_kind(events, "job_started", ["nightly"])
    finishes = of_kind(events, "job_finished", ["nightly"])
    for e in finishes:
        timeline.add(e["t"], "job", f"{e['job']} finished on {e['thread']} ({e['ms']:.0f} ms)")
    for e in of_kind(events, "worker_stopping"):
        timeline.add(
            e["t"],
            "exit",
            f"worker (pid {e['worker_pid']}) stops serving with {e['queued']} jobs queued and "
            f"{e['running']} running: the exit drain begins",
        )
    worker_exit = of_kind(events, "worker_exit")[-1]
    timeline.add(worker_exit["t"], "exit", f"worker (pid {worker_exit['worker_pid']}) has exited")
    timeline.add(exited, "exit", f"gunicorn master exited with code {exit_code}")
    timeline.print()
    print()
    not_started = sum(1 for e in starts if e["t"] > signalled)
    checks.expect(response.status == 200, "the request answered 200", str(response.status))
    checks.expect(
        not_started > 0,
        f"jobs were still waiting when SIGTERM arrived ({not_started} of {jobs} not started)",
        "they had all started already, so the drain was not shown",
    )
    checks.expect(
        len(finishes) == jobs and all(e["t"] < worker_exit["t"] for e in finishes),
        f"all {jobs} jobs finished before the worker exited",
        f"{len(finishes)} finished",
    )
    checks.expect(exit_code == 0, "gunicorn exited cleanly (code 0)", f"code {exit_code}")


# -- the server -------------------------------------------------------------------


def start_server(events_path: Path, log: Any) -> tuple[subprocess.Popen[bytes], int]:
    # The listening socket is made here and handed over (fd://): no window in
    # which another program could take a "free" port before gunicorn binds it.
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    port: int = listener.getsockname()[1]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "demo.settings",
        "DEMO_MAX_WORKERS": str(MAX_WORKERS),
        EVENTS_ENV_VAR: str(events_path),
        "PYTHONUNBUFFERED": "1",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "demo.wsgi:application",
        "--config",
        str(ROOT / "demo" / "gunicorn_conf.py"),
        "--worker-class",
        "gthread",
        "--workers",
        "1",
        "--threads",
        str(SERVER_THREADS),
        "--bind",
        f"fd://{listener.fileno()}",
    ]
    try:
        server = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            pass_fds=[listener.fileno()],
        )
    finally:
        listener.close()
    return server, port


def wait_until_ready(server: subprocess.Popen[bytes], port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError(f"gunicorn exited with code {server.returncode} before serving")
        try:
            if get(port, "/health", timeout=2).status == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise DemoError(f"gunicorn did not answer /health within {timeout:.0f} s")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is not None:
        return
    server.terminate()
    try:
        server.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.kill()
        server.wait()


def main() -> int:
    # A program started in the background by a non-interactive shell inherits
    # SIGINT as ignored, and an ignored signal stays ignored across exec. With a
    # handler installed here instead, exec resets it to the default in gunicorn.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    started = time.monotonic()
    checks = Checks()
    with tempfile.TemporaryDirectory(prefix="raincheck-demo-") as tmp:
        events_path = Path(tmp) / "events.jsonl"
        log_path = Path(tmp) / "gunicorn.log"
        server: subprocess.Popen[bytes] | None = None
        try:
            with log_path.open("wb") as log:
                server, port = start_server(events_path, log)
            print(
                f"raincheck demo: Django under gunicorn -k gthread, 1 worker x {SERVER_THREADS} "
                f"threads, on http://127.0.0.1:{port}\n"
                f"                RAINCHECK_MAX_WORKERS={MAX_WORKERS}; times are from the first "
                "request of each part"
            )
            wait_until_ready(server, port)
            after_the_response(port, events_path, checks)
            bounded_burst(port, events_path, checks)
            drain_on_sigterm(server, port, events_path, checks)
        except DemoError as exc:
            checks.failures.append(str(exc))
            print(f"\nThe demo could not go on: {exc}", file=sys.stderr)
        except KeyboardInterrupt:
            print("\nInterrupted.", file=sys.stderr)
            return 130
        finally:
            if server is not None:
                stop_server(server)
        if checks.failures:
            print("\ngunicorn's log, last lines:", file=sys.stderr)
            for line in log_path.read_text(errors="replace").splitlines()[-30:]:
                print(f"  | {line}", file=sys.stderr)
    elapsed = time.monotonic() - started
    if checks.failures:
        print(f"\nFAILED ({len(checks.failures)}):", file=sys.stderr)
        for failure in checks.failures:
            print(f"  - {failure}", file=sys.stderr)
        return 1
    print(f"\nAll good: every expectation held ({elapsed:.1f} s).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
