"""Render benchmarks/results.json into docs/benchmarks.rst and its charts in docs/charts/.

``python -m benchmarks.report`` (also run at the end of ``make bench``). In the
page, every region between ``.. BEGIN GENERATED: name`` and ``.. END GENERATED:
name`` is rewritten; the prose around them is not. Every figure is the median
of the passes, each pass's figure being pytest-benchmark's median of its rounds.

Each chart answers one question and sits next to its table: it is drawn for
the width of the docs' text column (about 740 px), with text as large as the
page's, and a click opens it at full size.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final

REPO: Final = Path(__file__).resolve().parent.parent
RESULTS: Final = REPO / "benchmarks" / "results.json"
PAGE: Final = REPO / "docs" / "benchmarks.rst"
CHARTS: Final = REPO / "docs" / "charts"

PEER_LABELS: Final = {
    "raincheck": "raincheck",
    "dj_raincheck": "dj-raincheck 0.5.0",
    "tasks_immediate": "django.tasks ImmediateBackend",
    "thread_per_job": "one thread per job",
    "executor_submit": "ThreadPoolExecutor.submit per job",
}
HTTP_LABELS: Final = {
    "none": "no jobs",
    "raincheck": "raincheck (default pool)",
    "raincheck_32": "raincheck, 32 workers",
    "dj_raincheck": "dj-raincheck 0.5.0",
    "inline": "jobs run inline in the view",
}
# The throughput part (benchmarks/throughput.py): one table and one chart per
# question, each case's name starting with its question.
THROUGHPUT_LABELS: Final = {
    "io_raincheck": "raincheck (default pool)",
    "io_raincheck_6": "raincheck, fixed pool of 6",
    "io_dj_raincheck": "dj-raincheck 0.5.0",
    "async_none": "no jobs",
    "async_raincheck": "raincheck",
    "async_servers_loop": "tasks on uvicorn's own loop (no drain)",
    "async_dj_raincheck": "dj-raincheck 0.5.0 (runs none)",
    "cpu_raincheck": "raincheck (default pool)",
    "cpu_raincheck_6": "raincheck, fixed pool of 6",
}
QUESTIONS: Final = {
    "io": "Sync I/O jobs, gunicorn",
    "async": "Async jobs, uvicorn",
    "cpu": "CPU-bound jobs, gunicorn",
}
HANDOFF_SIZES: Final = (0, 1, 10, 100, 1000)
X: Final = "\u00d7"  # the multiplication sign
NBSP: Final = "\u00a0"  # keeps "1.02 ms" on one line in a narrow column

Results = dict[str, Any]


# -- figures -------------------------------------------------------------------


def median_of(entries: Sequence[dict[str, Any]], key: str = "median_s") -> float | None:
    """The median over the passes that measured ``key`` (None if none did)."""
    values = [float(entry[key]) for entry in entries if entry.get(key) is not None]
    return statistics.median(values) if values else None


def micro(results: Results, peer: str, test: str, key: str = "median_s") -> float | None:
    entries = results.get("micro", {}).get(peer, {}).get(test)
    return median_of(entries, key) if entries else None


def burst_rate(results: Results, peer: str) -> float | None:
    seconds = micro(results, peer, "test_burst")
    jobs = micro(results, peer, "test_burst", "jobs")
    return None if seconds is None or jobs is None else jobs / seconds


def growth_kib(entry: dict[str, Any]) -> float:
    """How far peak resident memory rose above where it was before."""
    return float(entry["peak_rss_kib"]) - float(entry["rss_before_kib"])


def http(results: Results, server: str, load: str, scenario: str, key: str) -> float | None:
    entries = results.get("http", {}).get(server, {}).get(load, {}).get(scenario)
    return median_of(entries, key) if entries else None


def cases_of(question: str) -> list[str]:
    return [case for case in THROUGHPUT_LABELS if case.startswith(f"{question}_")]


def throughput_runs(results: Results, case: str) -> list[dict[str, Any]]:
    runs: list[dict[str, Any]] = results.get("throughput", {}).get("cases", {}).get(case, [])
    return runs


def throughput(results: Results, case: str, key: str, load: str = "saturated") -> float | None:
    runs = throughput_runs(results, case)
    return median_of([run[load] for run in runs], key) if runs else None


def threads_per_process(results: Results, case: str) -> float | None:
    """The most threads any one server process had, over both loads and every pass:
    a peak, so the worst pass rather than the median."""
    peaks = [
        run[load].get("server_peak_threads_per_process")
        for run in throughput_runs(results, case)
        for load in ("paced", "saturated")
    ]
    found = [float(peak) for peak in peaks if peak is not None]
    return max(found) if found else None


@dataclass(frozen=True)
class Stop:
    """The graceful stops of one case, over its passes: the worst of them, and the sums."""

    slowest_s: float | None  # None: some pass's server had to be killed
    in_time: bool
    limit_s: float
    ran: int
    scheduled: int
    complete: bool  # every process of every pass wrote its counts at exit
    queued: int | None  # raincheck's queue as the signal came (the worst pass)
    pool_peak: int | None
    cap: int | None

    @property
    def all_ran(self) -> bool:
        return self.complete and self.ran == self.scheduled


def stop_of(results: Results, case: str) -> Stop | None:
    stops = [run["stop"] for run in throughput_runs(results, case)]
    if not stops:
        return None
    times = [stop["seconds"] for stop in stops]

    def most(key: str) -> int | None:
        values = [stop[key] for stop in stops if stop.get(key) is not None]
        return max(values) if values else None

    return Stop(
        slowest_s=None if None in times else max(times),
        in_time=all(stop["in_time"] for stop in stops),
        limit_s=stops[0]["limit_s"],
        ran=sum(stop["ran"] for stop in stops),
        scheduled=sum(stop["scheduled"] for stop in stops),
        complete=all(stop["processes"] == stop["processes_expected"] for stop in stops),
        queued=most("queued_at_stop"),
        pool_peak=most("peak_workers"),
        cap=most("max_workers"),
    )


# -- formatting ----------------------------------------------------------------


def seconds(value: float | None) -> str:
    if value is None:
        return "n/a"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if value >= scale:
            return f"{_digits(value / scale)}{NBSP}{unit}"
    return f"{value / 1e-6:.3f}{NBSP}µs"


def _digits(value: float) -> str:
    return f"{value:.0f}" if value >= 100 else f"{value:.1f}" if value >= 10 else f"{value:.2f}"


def count(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.0f}"


def mib(kib: float | None) -> str:
    return "n/a" if kib is None else f"{kib / 1024:.1f}{NBSP}MiB"


def ratio(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}{X}" if value < 10 else f"{value:.0f}{X}"


def subtract(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else a - b


def divide(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def table(header: Sequence[str], rows: Iterable[Sequence[str]], widths: str = "") -> str:
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append(f"   :widths: {widths}")
    lines.append("")
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}".rstrip() for cell in row[1:])
    return "\n".join(lines)


def figure(name: str) -> str:
    """The page's figure for chart ``name``: full column width, linked to the full size."""
    chart = CHART_SPECS[name]
    return "\n".join(
        [
            f".. figure:: charts/{name}.png",
            "   :width: 100%",
            f"   :alt: {chart.alt}",
            "",
            f"   {chart.caption} Click for the full size.",
        ]
    )


# -- targets -------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    what: str
    measured: str
    goal: str
    passed: bool | None

    @property
    def verdict(self) -> str:
        return "n/a" if self.passed is None else "pass" if self.passed else "**miss**"


def _at_least(value: float | None, goal: float) -> bool | None:
    return None if value is None else value >= goal


def _at_most(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


def _ratio_target(
    name: str,
    ours: float | None,
    theirs: float | None,
    show: Callable[[float | None], str],
    goal: float,
    *,
    at_most: bool = False,
) -> Target:
    """``ours / theirs`` against ``goal``: at least it, or with ``at_most``, at most it."""
    times = divide(ours, theirs)
    return Target(
        name,
        f"{show(ours)} vs {show(theirs)}: {ratio(times)}",
        f"{'≤' if at_most else '≥'} {goal:g}{X}",
        _at_most(times, goal) if at_most else _at_least(times, goal),
    )


def targets(results: Results) -> list[Target]:
    found: list[Target] = []
    rc_schedule = micro(results, "raincheck", "test_schedule")
    dj_schedule = micro(results, "dj_raincheck", "test_schedule")
    bare = micro(results, "raincheck", "test_bare_call")
    faster = divide(dj_schedule, rc_schedule)
    found.append(
        Target(
            "``schedule()`` vs dj-raincheck's",
            f"{seconds(rc_schedule)} vs {seconds(dj_schedule)}: {ratio(faster)} faster",
            f"≥ 10{X} faster",
            _at_least(faster, 10),
        )
    )
    slower = divide(rc_schedule, bare)
    found.append(
        Target(
            "``schedule()`` vs a bare call appending to a list",
            f"{seconds(rc_schedule)} vs {seconds(bare)}: {ratio(slower)}",
            f"within 3{X}",
            _at_most(slower, 3),
        )
    )
    rc_10 = micro(results, "raincheck", "test_handoff[10]")
    dj_10 = micro(results, "dj_raincheck", "test_handoff[10]")
    cheaper = divide(dj_10, rc_10)
    rc_0 = micro(results, "raincheck", "test_handoff[0]")
    dj_0 = micro(results, "dj_raincheck", "test_handoff[0]")
    rc_net, dj_net = subtract(rc_10, rc_0), subtract(dj_10, dj_0)
    net = f" (above the 0-job floor: {seconds(rc_net)} vs {seconds(dj_net)})"
    found.append(
        Target(
            "Hand-off of a 10-job request vs dj-raincheck's",
            f"{seconds(rc_10)} vs {seconds(dj_10)}: {ratio(cheaper)} cheaper{net}",
            f"≥ 30{X} cheaper",
            _at_least(cheaper, 30),
        )
    )
    rc_1 = micro(results, "raincheck", "test_handoff[1]")
    rc_100 = micro(results, "raincheck", "test_handoff[100]")
    growth = divide(rc_100, rc_1)
    found.append(
        Target(
            "Hand-off independent of job count (1 → 100 jobs)",
            f"{seconds(rc_1)} → {seconds(rc_100)}: {ratio(growth)}",
            f"≤ 2{X} for 100{X} the jobs",
            _at_most(growth, 2),
        )
    )
    rc_burst = burst_rate(results, "raincheck")
    for peer, goal in (("dj_raincheck", 30.0), ("executor_submit", 3.0)):
        other = burst_rate(results, peer)
        times = divide(rc_burst, other)
        found.append(
            Target(
                f"10,000-job burst vs {PEER_LABELS[peer]}",
                f"{count(rc_burst)} vs {count(other)} jobs/s: {ratio(times)}",
                f"≥ {goal:.0f}{X}",
                _at_least(times, goal),
            )
        )
    threads = micro(results, "raincheck", "test_burst", "peak_threads")
    workers = micro(results, "raincheck", "test_burst", "max_workers")
    found.append(
        Target(
            "Peak threads during the burst",
            f"{count(threads)} (RAINCHECK_MAX_WORKERS = {count(workers)})",
            "≤ pool size + 2",
            None if threads is None or workers is None else threads <= workers + 2,
        )
    )
    for server in ("gunicorn", "uvicorn"):
        for load in ("paced", "saturated"):
            found.extend(_http_targets(results, server, load))
    found.extend(_throughput_targets(results))
    overload = results.get("overload", {})
    if overload:
        bounded = [overload[case] for case in overload if case != "unbounded"]
        worst = max(growth_kib(entry) for entry in bounded)
        unbounded = overload.get("unbounded")
        free = "" if unbounded is None else f" (unbounded queue: +{mib(growth_kib(unbounded))})"
        found.append(
            Target(
                "Memory, 100,000 jobs offered with RAINCHECK_MAX_QUEUE = 1000",
                f"peak growth at most +{mib(worst)} over all four policies{free}",
                "bounded; exact counts below",
                all(
                    entry["succeeded"] + entry["failed"] + entry["dropped"] == entry["scheduled"]
                    for entry in bounded
                ),
            )
        )
    return found


def _http_targets(results: Results, server: str, load: str) -> list[Target]:
    def get(scenario: str, key: str) -> float | None:
        return http(results, server, load, scenario, key)

    none_rps, rc_rps = get("none", "rps"), get("raincheck", "rps")
    none_p99, rc_p99 = get("none", "p99_s"), get("raincheck", "p99_s")
    if none_rps is None:
        return []
    rps_ratio = divide(rc_rps, none_rps)
    notes = ""
    passed = _at_least(rps_ratio, 0.9)
    if load == "saturated":
        # With the CPUs saturated, no in-process runner can beat running the
        # jobs' CPU cost somewhere: the no-jobs CPU per request over the inline one.
        cpu_none = get("none", "server_cpu_s_per_request")
        limit = divide(cpu_none, get("inline", "server_cpu_s_per_request"))
        # Requests answered while threads pile up are not a steady state.
        threads = get("raincheck", "server_peak_threads")
        none_threads = get("none", "server_peak_threads")
        notes = (
            f" (CPU bound for any in-process runner: {ratio(limit)}; server threads "
            f"{count(threads)} vs {count(none_threads)})"
        )
        if passed and threads is not None and none_threads is not None:
            passed = threads <= 10 * none_threads
    goal = f"≥ 0.9{X}" + (f", threads bounded (≤ 10{X} no jobs)" if load == "saturated" else "")
    found = [
        Target(
            f"HTTP, {server}, {load}: requests/s vs no jobs",
            f"{count(rc_rps)} vs {count(none_rps)}: {ratio(rps_ratio)}{notes}",
            goal,
            passed,
        ),
        _ratio_target(
            f"HTTP, {server}, {load}: p99 latency vs no jobs",
            rc_p99,
            none_p99,
            seconds,
            1.25,
            at_most=True,
        ),
    ]
    # Paced load is the same for every row, so latency tells them apart;
    # saturated load shows how many requests each gets through.
    key, better = ("p99_s", min) if load == "paced" else ("rps", max)
    for rival in ("dj_raincheck", "inline"):
        ours, theirs = get("raincheck", key), get(rival, key)
        show: Callable[[float | None], str] = seconds if key == "p99_s" else count
        found.append(
            Target(
                f"HTTP, {server}, {load}: ahead of {HTTP_LABELS[rival]}",
                f"{'p99' if key == 'p99_s' else 'requests/s'} {show(ours)} vs {show(theirs)}",
                "lower p99" if key == "p99_s" else "more requests/s",
                None if ours is None or theirs is None else better(ours, theirs) == ours,
            )
        )
    return found


def _throughput_targets(results: Results) -> list[Target]:
    # Listed even before the part has run (as n/a): the page shows what it will check.

    def get(case: str, key: str) -> float | None:
        return throughput(results, case, key)

    found = []
    found.append(
        _ratio_target(
            "Sync I/O jobs, gunicorn, saturated: requests/s vs dj-raincheck",
            get("io_raincheck", "rps"),
            get("io_dj_raincheck", "rps"),
            count,
            2,
        )
    )
    rc, dj = get("io_raincheck", "p99_s"), get("io_dj_raincheck", "p99_s")
    found.append(
        Target(
            "Sync I/O jobs, gunicorn, saturated: p99 vs dj-raincheck",
            f"{seconds(rc)} vs {seconds(dj)}",
            "≤ dj-raincheck's",
            None if rc is None or dj is None else rc <= dj,
        )
    )
    threads = threads_per_process(results, "io_raincheck")
    dj_threads = threads_per_process(results, "io_dj_raincheck")
    stop = stop_of(results, "io_raincheck")
    pool = None if stop is None else stop.pool_peak
    cap = None if stop is None else stop.cap
    passed = None
    if threads is not None and dj_threads is not None and pool is not None and cap is not None:
        passed = pool <= cap and threads <= dj_threads
    found.append(
        Target(
            "Sync I/O jobs, gunicorn: peak threads per process",
            f"{count(threads)} (pool {count(pool)}, cap {count(cap)}) vs dj-raincheck's "
            f"{count(dj_threads)}",
            "pool ≤ its cap; ≤ dj-raincheck's",
            passed,
        )
    )
    async_rps = _ratio_target(
        "Async jobs, uvicorn, saturated: requests/s vs no jobs",
        get("async_raincheck", "rps"),
        get("async_none", "rps"),
        count,
        0.9,
    )
    # What the same jobs cost as bare tasks on the server's own loop, undrained.
    on_servers_loop = divide(get("async_servers_loop", "rps"), get("async_none", "rps"))
    found.append(
        replace(
            async_rps,
            measured=f"{async_rps.measured} (tasks on uvicorn's own loop: "
            f"{ratio(on_servers_loop)})",
        )
    )
    found.append(
        _ratio_target(
            "Async jobs, uvicorn, saturated: p99 vs no jobs",
            get("async_raincheck", "p99_s"),
            get("async_none", "p99_s"),
            seconds,
            1.25,
            at_most=True,
        )
    )
    found.append(
        _ratio_target(
            "CPU-bound jobs, gunicorn, saturated: requests/s vs the fixed pool of 6",
            get("cpu_raincheck", "rps"),
            get("cpu_raincheck_6", "rps"),
            count,
            0.95,
        )
    )
    return [*found, *_stop_targets(results)]


def _stop_targets(results: Results) -> list[Target]:
    stops = {case: stop_of(results, case) for case in THROUGHPUT_LABELS}
    measured = {case: stop for case, stop in stops.items() if stop is not None}
    in_time = "Graceful stop of every server: exited in time"
    all_ran = "Graceful stop, raincheck with default settings: jobs run = jobs scheduled"
    if not measured:
        return [
            Target(in_time, "n/a", "≤ shutdown timeout + margin", None),
            Target(all_ran, "n/a", "every job, every pass", None),
        ]
    limit = next(iter(measured.values())).limit_s
    late = [case for case, stop in measured.items() if not stop.in_time]
    slowest = max((stop.slowest_s or float("inf")) for stop in measured.values())
    # Every job ran: asked of raincheck with its default settings. The fixed pool
    # of 6 is there to show what the old default left queued (the table below).
    defaults = [case for case in measured if case.split("_", 1)[1] == "raincheck"]
    lost = [case for case in defaults if not measured[case].all_ran]
    return [
        Target(
            in_time,
            f"{len(measured) - len(late)} of {len(measured)} setups; slowest "
            + ("killed" if slowest == float("inf") else seconds(slowest)),
            f"≤ shutdown timeout + margin ({seconds(limit)})",
            not late,
        ),
        Target(
            all_ran,
            f"{len(defaults) - len(lost)} of {len(defaults)} setups"
            + "".join(f"; {_setup(case)}: {jobs_run(measured[case])}" for case in lost),
            "every job, every pass",
            not lost if defaults else None,
        ),
    ]


def _setup(case: str) -> str:
    return f"{QUESTIONS[case.split('_', 1)[0]]}, {THROUGHPUT_LABELS[case]}"


def jobs_run(stop: Stop) -> str:
    if not stop.complete:
        return f"{count(stop.ran)} of {count(stop.scheduled)}, a process wrote no counts"
    if stop.scheduled == 0:
        return "none scheduled"
    if stop.ran == stop.scheduled:
        return f"all {count(stop.ran)}"
    return f"{count(stop.ran)} of {count(stop.scheduled)}"


# -- page regions --------------------------------------------------------------


def region_machine(results: Results) -> str:
    machine, run = results["machine"], results["run"]
    packages = ", ".join(f"{name} {version}" for name, version in machine["packages"].items())
    load = run["load_average_before"], run["load_average_after"]
    passes = (
        f"{run['passes']} of the micro benchmarks, {run['http_passes']} of the HTTP ones "
        f"({run['paced_seconds']} s paced, {run['saturated_seconds']} s saturated per view)"
    )
    return "\n".join(
        [
            f"- Machine: {machine['cpus']} CPUs ({machine['cpu_model']}), {machine['platform']}",
            f"- ``python -VV``: {machine['python']}",
            f"- Packages: {packages}; load generator: {machine['wrk']}",
            (
                f"- raincheck commit {machine['commit']}; started {run['started']}, "
                f"took {run['duration_s']:.0f} s"
            ),
            (
                f"- Passes: {passes}; load average before and after: "
                f"{' '.join(map(str, load[0]))} / {' '.join(map(str, load[1]))}"
            ),
        ]
    )


def region_targets(results: Results) -> str:
    # The verdict comes first: in a narrow column the last column is the one cut.
    rows = [(t.verdict, t.what, t.measured, t.goal) for t in targets(results)]
    return table(("Result", "Target", "Measured", "Goal"), rows, "10 30 42 18")


def region_micro(results: Results) -> str:
    rows = []
    for peer, label in PEER_LABELS.items():
        inline = micro(results, peer, "test_inline")
        rows.append(
            (
                label,
                seconds(micro(results, peer, "test_schedule")),
                seconds(micro(results, peer, "test_handoff[10]")),
                "n/a" if inline is None else seconds(inline),
            )
        )
    bare = micro(results, "raincheck", "test_bare_call")
    rows.append(("bare call appending to a list", seconds(bare), "n/a", "n/a"))
    header = ("Peer", "``schedule()``", "Hand-off, 10 jobs", "Inline, per job")
    return "\n\n".join([table(header, rows, "40 20 20 20"), figure("schedule")])


def region_burst(results: Results) -> str:
    rows = []
    for peer, label in PEER_LABELS.items():
        before = micro(results, peer, "test_burst", "rss_before_kib")
        peak = micro(results, peer, "test_burst", "peak_rss_kib")
        rows.append(
            (
                label,
                count(burst_rate(results, peer)),
                (
                    f"{count(micro(results, peer, 'test_burst', 'peak_threads'))} / "
                    f"{count(micro(results, peer, 'test_burst', 'threads_used'))}"
                ),
                "n/a" if before is None or peak is None else f"+{mib(peak - before)}",
            )
        )
    header = ("Peer", "Burst, jobs/s", "Threads: peak / used", "Peak RSS growth")
    return "\n\n".join([table(header, rows, "40 20 20 20"), figure("burst")])


def region_handoff(results: Results) -> str:
    rows = [
        (label, *(seconds(micro(results, peer, f"test_handoff[{n}]")) for n in HANDOFF_SIZES))
        for peer, label in PEER_LABELS.items()
    ]
    jobs = [f"{n:,} job" if n == 1 else f"{n:,} jobs" for n in HANDOFF_SIZES]
    return "\n\n".join([table(("Peer", *jobs), rows), figure("handoff")])


def region_scaling(results: Results) -> str:
    scaling = results.get("scaling", {})

    def rate(test: str) -> str:
        entry = scaling.get(test)
        return "n/a" if entry is None else count(entry["jobs"] / entry["median_s"])

    def time_of(test: str) -> str:
        entry = scaling.get(test)
        return "n/a" if entry is None else seconds(entry["median_s"])

    sizes = [
        (
            f"{size:,}",
            seconds(micro(results, "raincheck", f"test_handoff[{size}]")),
            rate(f"test_throughput_by_request_size[{size}]"),
        )
        for size in (1, 10, 100, 1000)
    ]
    workers = [
        (
            str(n),
            time_of(f"test_handoff_by_workers[{n}]"),
            rate(f"test_burst_by_workers[{n}]"),
            rate(f"test_io_burst_by_workers[{n}]"),
        )
        for n in (1, 2, 4, 8, 16, 32)
    ]
    return "\n\n".join(
        [
            "By jobs per request (10,000 jobs in all for the throughput):",
            table(("Jobs per request", "Hand-off", "Throughput, jobs/s"), sizes),
            "By ``RAINCHECK_MAX_WORKERS``:",
            table(
                (
                    "Workers",
                    "Hand-off, 10 jobs",
                    "Trivial jobs, jobs/s",
                    "Jobs of 1 ms I/O, jobs/s",
                ),
                workers,
            ),
            figure("scaling"),
        ]
    )


def region_overload(results: Results) -> str:
    times, outcomes = [], []
    for case, entry in results.get("overload", {}).items():
        label = "unbounded queue (block)" if case == "unbounded" else f"``{case}``"
        times.append(
            (
                label,
                seconds(entry["handoff_p50_s"]),
                seconds(entry["handoff_p99_s"]),
                seconds(entry["handoff_max_s"]),
                seconds(entry["drained_s"]),
            )
        )
        outcomes.append(
            (
                label,
                count(entry["succeeded"]),
                count(entry["dropped"]),
                count(entry["ran_in_caller"]),
                f"+{mib(growth_kib(entry))}",
            )
        )
    return "\n\n".join(
        [
            "The request thread's time at each hand-off, and when the last job was done:",
            table(("Policy", "Hand-off p50", "p99", "max", "All done after"), times),
            "What became of the 100,000 jobs, and the memory it took:",
            table(("Policy", "Ran", "Dropped", "Of which in caller", "Peak RSS growth"), outcomes),
        ]
    )


SERVER_TITLES: Final = {
    "gunicorn": f"gunicorn ``gthread``, 2 workers {X} 4 threads",
    "uvicorn": "uvicorn, 1 worker",
}


def region_http_paced(results: Results) -> str:
    parts = []
    for server, title in SERVER_TITLES.items():
        rows = [
            (
                label,
                count(http(results, server, "paced", scenario, "rps")),
                seconds(http(results, server, "paced", scenario, "p50_s")),
                seconds(http(results, server, "paced", scenario, "p99_s")),
            )
            for scenario, label in HTTP_LABELS.items()
        ]
        parts += [f"{title}, paced:", table(("View", "req/s", "p50", "p99"), rows, "49 17 17 17")]
    return "\n\n".join([*parts, figure("http-latency")])


def region_http_saturated(results: Results) -> str:
    parts = []
    for server, title in SERVER_TITLES.items():
        rows = []
        for scenario, label in HTTP_LABELS.items():
            cpu, threads, rss = (
                http(results, server, "saturated", scenario, key)
                for key in (
                    "server_cpu_s_per_request",
                    "server_peak_threads",
                    "server_peak_rss_kib",
                )
            )
            rows.append(
                (
                    label,
                    count(http(results, server, "saturated", scenario, "rps")),
                    seconds(http(results, server, "saturated", scenario, "p50_s")),
                    seconds(http(results, server, "saturated", scenario, "p99_s")),
                    seconds(cpu),
                    count(threads),
                    mib(rss),
                )
            )
        header = ("View", "req/s", "p50", "p99", "CPU per request", "Threads", "RSS")
        parts += [f"{title}, saturated:", table(header, rows, "28 12 12 12 12 10 14")]
    return "\n\n".join([*parts, figure("http-throughput")])


def region_throughput(question: str) -> Callable[[Results], str]:
    def render(results: Results) -> str:
        rows = [
            (
                THROUGHPUT_LABELS[case],
                count(throughput(results, case, "rps")),
                seconds(throughput(results, case, "p99_s")),
                seconds(throughput(results, case, "p99_s", "paced")),
                count(threads_per_process(results, case)),
            )
            for case in cases_of(question)
        ]
        header = ("Setup", "req/s", "p99", "Paced p99", "Threads per process")
        parts = [table(header, rows, "36 14 14 16 20"), figure(f"throughput-{question}")]
        job = results.get("throughput", {}).get("cpu_job_s")
        if question == "cpu":
            parts.insert(
                0, f"One job took {seconds(job)} in the benchmark's own process, unloaded."
            )
        return "\n\n".join(parts)

    return render


def region_throughput_stop(results: Results) -> str:
    rows = []
    for case in THROUGHPUT_LABELS:
        stop = stop_of(results, case)
        if stop is None:
            rows.append((_setup(case), "n/a", "n/a", "n/a"))
            continue
        took = "killed" if stop.slowest_s is None else seconds(stop.slowest_s)
        rows.append((_setup(case), took, jobs_run(stop), count(stop.queued)))
    header = ("Setup", "Exited after", "Jobs run", "Queued at the signal")
    return table(header, rows, "46 16 22 16")


REGIONS: Final[dict[str, Callable[[Results], str]]] = {
    "machine": region_machine,
    "targets": region_targets,
    "micro": region_micro,
    "burst": region_burst,
    "handoff": region_handoff,
    "scaling": region_scaling,
    "overload": region_overload,
    "http_paced": region_http_paced,
    "http_saturated": region_http_saturated,
    "throughput_io": region_throughput("io"),
    "throughput_async": region_throughput("async"),
    "throughput_cpu": region_throughput("cpu"),
    "throughput_stop": region_throughput_stop,
}


def render_page(text: str, results: Results) -> str:
    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        body = REGIONS[name](results)
        return f".. BEGIN GENERATED: {name}\n\n{body}\n\n.. END GENERATED: {name}"

    pattern = r"^\.\. BEGIN GENERATED: (\w+)\n.*?^\.\. END GENERATED: \1$"
    rendered, found = re.subn(pattern, replace, text, flags=re.MULTILINE | re.DOTALL)
    if found != len(REGIONS):
        raise ValueError(f"{PAGE} has {found} generated regions, expected {len(REGIONS)}")
    return rendered


# -- charts --------------------------------------------------------------------


@dataclass(frozen=True)
class ChartSpec:
    alt: str
    caption: str


CHART_SPECS: Final = {
    "schedule": ChartSpec(
        "Bar chart: the cost of one schedule() call for each peer, in microseconds.",
        "What a view pays per ``schedule()`` call (log scale; shorter is better).",
    ),
    "burst": ChartSpec(
        "Bar chart: jobs per second for a burst of 10,000 jobs, for each peer.",
        "Jobs per second in a 10,000-job burst (log scale; longer is better).",
    ),
    "handoff": ChartSpec(
        "Line chart: the request thread's time at request end against the number "
        "of jobs in the request, for each peer.",
        "The request thread's time in ``request_finished`` by jobs in the request "
        "(log scales; lower is better).",
    ),
    "scaling": ChartSpec(
        "Line chart: raincheck's throughput against RAINCHECK_MAX_WORKERS, for "
        "trivial jobs and for jobs of 1 ms I/O.",
        "raincheck's throughput by pool size (log scales; higher is better).",
    ),
    "http-latency": ChartSpec(
        "Bar chart: p99 latency under paced load for each view, under gunicorn and uvicorn.",
        "p99 latency under paced load, by view and server (shorter is better).",
    ),
    "http-throughput": ChartSpec(
        "Bar chart: requests per second at saturation for each view, under gunicorn and uvicorn.",
        "Requests per second at saturation, by view and server (longer is better).",
    ),
    "throughput-io": ChartSpec(
        "Bar chart: requests per second at saturation under gunicorn for a view "
        "scheduling 5 jobs of 5 ms sleep, for raincheck, raincheck with a fixed pool "
        "of 6 and dj-raincheck, with each one's peak threads per process.",
        "Sync I/O jobs under gunicorn: requests per second at saturation, and the "
        "most threads of any server process (longer bars are better).",
    ),
    "throughput-async": ChartSpec(
        "Bar chart: requests per second at saturation under uvicorn for an async view "
        "scheduling 5 async jobs of 5 ms, for no jobs, raincheck, the same jobs as tasks "
        "on uvicorn's own loop and dj-raincheck, with each one's peak threads.",
        "Async jobs under uvicorn: requests per second at saturation, and the most "
        "threads of the server process (longer bars are better).",
    ),
    "throughput-cpu": ChartSpec(
        "Bar chart: requests per second at saturation under gunicorn for a view "
        "scheduling 5 CPU-bound jobs of 0.5 ms, for raincheck's default pool and a "
        "fixed pool of 6, with each one's peak threads per process.",
        "CPU-bound jobs under gunicorn: requests per second at saturation, and the "
        "most threads of any server process (longer bars are better).",
    ),
}

SHORT_LABELS: Final = {
    "raincheck": "raincheck",
    "dj_raincheck": "dj-raincheck",
    "tasks_immediate": "django.tasks Immediate",
    "thread_per_job": "thread per job",
    "executor_submit": "executor.submit per job",
    "bare": "bare call + append",
}
COLORS: Final = {
    "raincheck": "#1f77b4",
    "dj_raincheck": "#d62728",
    "tasks_immediate": "#9467bd",
    "thread_per_job": "#ff7f0e",
    "executor_submit": "#2ca02c",
    "bare": "#7f7f7f",
}
HTTP_SHORT: Final = {
    "none": "no jobs",
    "raincheck": "raincheck",
    "raincheck_32": "raincheck, 32 workers",
    "dj_raincheck": "dj-raincheck",
    "inline": "inline in the view",
}
SERVER_COLORS: Final = {"gunicorn": "#1f77b4", "uvicorn": "#ff7f0e"}
# Inches at the text column's width: 11 pt text shows at about the page's size.
WIDTH_IN: Final = 7.5
DPI: Final = 160


def _new(height: float) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 11, "axes.titlesize": 12, "legend.fontsize": 10})
    fig, ax = plt.subplots(figsize=(WIDTH_IN, height))
    ax.spines[["top", "right"]].set_visible(False)
    return fig, ax


def _plain(axis: Any) -> None:
    """Tick labels as plain numbers (0.1, 1,000), not powers of ten."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:,.0f}" if v >= 1 else f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _save(fig: Any, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # No timestamp in the file, so an unchanged chart is an unchanged file.
    fig.savefig(path, dpi=DPI, metadata={"Software": None})
    plt.close(fig)


def _peer_bars(
    bars: list[tuple[str, float | None]], xlabel: str, show: Callable[[float], str], path: Path
) -> None:
    shown = [(name, value) for name, value in bars if value is not None]
    fig, ax = _new(0.45 * len(shown) + 1.0)
    values = [value for _, value in shown]
    ax.barh(
        [SHORT_LABELS[name] for name, _ in shown],
        values,
        color=[COLORS[name] for name, _ in shown],
    )
    ax.set_xscale("log")
    _plain(ax.xaxis)
    ax.set_xlim(min(values) / 2, max(values) * 8)  # room for the labels
    for y, value in enumerate(values):
        ax.annotate(show(value), (value, y), xytext=(4, 0), textcoords="offset points", va="center")
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    _save(fig, path)


def chart_schedule(results: Results, path: Path) -> None:
    bars = [(peer, micro(results, peer, "test_schedule")) for peer in PEER_LABELS]
    bars.append(("bare", micro(results, "raincheck", "test_bare_call")))
    scaled = [(name, None if v is None else v * 1e6) for name, v in bars]
    _peer_bars(scaled, "µs per schedule() call", lambda v: f"{v:.3g} µs", path)


def chart_burst(results: Results, path: Path) -> None:
    rates = [(peer, burst_rate(results, peer)) for peer in PEER_LABELS]
    _peer_bars(rates, "jobs per second, 10,000-job burst", lambda v: f"{v:,.0f}", path)


def chart_handoff(results: Results, path: Path) -> None:
    fig, ax = _new(3.8)
    for peer in PEER_LABELS:
        points = [(n, micro(results, peer, f"test_handoff[{n}]")) for n in HANDOFF_SIZES[1:]]
        xs = [n for n, v in points if v is not None]
        ys = [v * 1e6 for _, v in points if v is not None]
        ax.plot(xs, ys, marker="o", label=SHORT_LABELS[peer], color=COLORS[peer])
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xticks(HANDOFF_SIZES[1:], [f"{n:,}" for n in HANDOFF_SIZES[1:]])
    _plain(ax.yaxis)
    ax.set_xlabel("jobs in the request")
    ax.set_ylabel("µs in request_finished")
    ax.legend(loc="upper left")
    _save(fig, path)


def chart_scaling(results: Results, path: Path) -> None:
    scaling = results.get("scaling", {})
    workers = [1, 2, 4, 8, 16, 32]
    fig, ax = _new(3.6)
    for test, label in (
        ("test_burst_by_workers", "trivial jobs"),
        ("test_io_burst_by_workers", "jobs of 1 ms I/O"),
    ):
        entries = [scaling.get(f"{test}[{n}]") for n in workers]
        xs = [n for n, e in zip(workers, entries, strict=True) if e is not None]
        ys = [e["jobs"] / e["median_s"] for e in entries if e is not None]
        ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(workers, [str(n) for n in workers])
    _plain(ax.yaxis)
    ax.set_xlabel("RAINCHECK_MAX_WORKERS")
    ax.set_ylabel("jobs per second")
    ax.legend(loc="center left")
    _save(fig, path)


def _http_bars(
    results: Results,
    load: str,
    key: str,
    *,
    scale: float,
    xlabel: str,
    show: Callable[[float], str],
    legend: str,
    path: Path,
) -> None:
    scenarios = list(HTTP_SHORT)
    fig, ax = _new(0.55 * len(scenarios) + 1.0)
    height = 0.38
    top = 0.0
    for i, server in enumerate(SERVER_COLORS):
        raw = [http(results, server, load, s, key) for s in scenarios]
        values = [None if v is None else v * scale for v in raw]
        ys = [y + (i - 0.5) * height for y in range(len(scenarios))]
        ax.barh(ys, [v or 0.0 for v in values], height, label=server, color=SERVER_COLORS[server])
        for y, value in zip(ys, values, strict=True):
            if value is not None:
                top = max(top, value)
                ax.annotate(
                    show(value),
                    (value, y),
                    xytext=(3, 0),
                    textcoords="offset points",
                    va="center",
                    fontsize=9,
                )
    ax.set_yticks(range(len(scenarios)), [HTTP_SHORT[s] for s in scenarios])
    ax.set_xlim(0, top * 1.2)
    ax.invert_yaxis()
    ax.set_xlabel(xlabel)
    ax.legend(loc=legend)
    _save(fig, path)


def chart_http_latency(results: Results, path: Path) -> None:
    _http_bars(
        results,
        "paced",
        "p99_s",
        scale=1e3,
        xlabel="p99 latency, ms",
        show=lambda v: f"{v:.3g} ms",
        legend="upper right",
        path=path,
    )


def chart_http_throughput(results: Results, path: Path) -> None:
    _http_bars(
        results,
        "saturated",
        "rps",
        scale=1.0,
        xlabel="requests per second",
        show=lambda v: f"{v:,.0f}",
        legend="lower right",
        path=path,
    )


THROUGHPUT_SHORT: Final = {
    "raincheck": "raincheck",
    "raincheck_6": "raincheck, pool of 6",
    "dj_raincheck": "dj-raincheck",
    "none": "no jobs",
    "servers_loop": "uvicorn's loop",
}
THROUGHPUT_COLORS: Final = {
    "raincheck": COLORS["raincheck"],
    "raincheck_6": "#9ecae1",
    "dj_raincheck": COLORS["dj_raincheck"],
    "none": COLORS["bare"],
    "servers_loop": "#c7c7c7",
}


def chart_throughput(question: str) -> Callable[[Results, Path], None]:
    def draw(results: Results, path: Path) -> None:
        cases = cases_of(question)
        setups = [case.split("_", 1)[1] for case in cases]
        rates = [throughput(results, case, "rps") for case in cases]
        fig, ax = _new(0.5 * len(cases) + 1.1)
        ax.barh(
            range(len(cases)),
            [rate or 0.0 for rate in rates],
            color=[THROUGHPUT_COLORS[setup] for setup in setups],
        )
        for y, (case, rate) in enumerate(zip(cases, rates, strict=True)):
            threads = threads_per_process(results, case)
            text = "not measured" if rate is None else f"{rate:,.0f} req/s"
            text += "" if threads is None else f", {threads:.0f} threads"
            where = 0.0 if rate is None else rate
            ax.annotate(text, (where, y), xytext=(4, 0), textcoords="offset points", va="center")
        ax.set_yticks(range(len(cases)), [THROUGHPUT_SHORT[setup] for setup in setups])
        # Room on the right for the labels.
        measured = [rate for rate in rates if rate is not None]
        ax.set_xlim(0, max(measured, default=1.0) * 1.7)
        _plain(ax.xaxis)
        if not measured:
            ax.set_xticks([])  # no scale to show until the part has run
        ax.invert_yaxis()
        ax.set_xlabel("requests per second at saturation")
        _save(fig, path)

    return draw


CHARTS_BY_NAME: Final[dict[str, Callable[[Results, Path], None]]] = {
    "schedule": chart_schedule,
    "burst": chart_burst,
    "handoff": chart_handoff,
    "scaling": chart_scaling,
    "http-latency": chart_http_latency,
    "http-throughput": chart_http_throughput,
    "throughput-io": chart_throughput("io"),
    "throughput-async": chart_throughput("async"),
    "throughput-cpu": chart_throughput("cpu"),
}


def charts(results: Results, directory: Path) -> list[Path]:
    paths = []
    for name, draw in CHARTS_BY_NAME.items():
        path = directory / f"{name}.png"
        draw(results, path)
        paths.append(path)
    return paths


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.report", description=__doc__)
    parser.add_argument("--results", type=Path, default=RESULTS)
    parser.add_argument("--no-chart", action="store_true")
    args = parser.parse_args(argv)
    results: Results = json.loads(args.results.read_text())
    PAGE.write_text(render_page(PAGE.read_text(), results))
    if not args.no_chart:
        charts(results, CHARTS)
    for target in targets(results):
        print(f"{target.verdict:>8}  {target.what}: {target.measured} (goal {target.goal})")
    print(f"rendered {PAGE.relative_to(REPO)} and {CHARTS.relative_to(REPO)}/*.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
