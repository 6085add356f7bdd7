"""The version matrix: every supported Python x Django pair, one nox session each.

Run it with ``make matrix`` (which also prints the summary at the end), or with
``nox`` from an environment that has the ``matrix`` dependency group.

* Interpreters: ``python3.X`` on ``PATH``, or the newest ``3.X.*`` under
  ``$PYENV_ROOT/versions`` (``~/.pyenv`` by default); the pyenv ones are put on
  ``PATH`` here, so no shell setup is needed. A pair whose interpreter is missing
  is *skipped* with the reason, also on CI (nox would fail it there by default).
* Each session installs raincheck (editable), the ``test`` and ``observability``
  dependency groups and ``django~=X.Y.0``, then runs pytest. Anything after ``--``
  goes to pytest: ``make matrix NOX_ARGS='-- -m "not server"'`` leaves the servers out.
* The server tests (``-m server``, nine tenths of a pair's time) run on a few pairs
  that together hold every Python and every Django release: 3.10 x 4.2, 3.11 x 5.2,
  3.12 x 6.0 and 3.13 x 6.1. What they check differs by interpreter (how CPython's
  shutdown joins threads) and by Django (its request handlers), so each version
  gets one full run; the other pairs run every other test. That keeps CI within
  its time on two cores. ``RAINCHECK_MATRIX_SERVERS=all`` runs them on every pair.
* CI skips the pair that ``make test`` has just run (``$RAINCHECK_MATRIX_COVERED``),
  and the summary says so.
* Sessions run in parallel, one per core (``-j N`` overrides),
  and reuse their virtualenvs: ``pip install`` is skipped while
  pyproject.toml has not changed.
* A hung test cannot hang CI. pytest-timeout fails any test still running after
  300 s (pyproject.toml), with every thread's stack, and the session goes on;
  a test stuck where it cannot be interrupted gets its stacks dumped by
  faulthandler at 330 s. As a last resort the whole pytest run is stopped after
  ``$RAINCHECK_MATRIX_TIMEOUT`` seconds (1500): that is a generous backstop, not
  a budget, and the pair is said to hang only if one of those dumps was printed.
  Each pair's output is also kept in ``.nox/_results/`` next to its JUnit XML.

``python noxfile.py summary REPORT [SECONDS]`` prints the table that ``make matrix``
shows from nox's ``--report`` JSON.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shlex
import shutil
import sys
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import nox
from nox.command import CommandFailed

ROOT = Path(__file__).resolve().parent
RESULTS = ROOT / ".nox" / "_results"

PYTHONS = ("3.10", "3.11", "3.12", "3.13")
# Django release -> the Pythons it supports (Django's own compatibility table).
DJANGOS: dict[str, tuple[str, ...]] = {
    "4.2": ("3.10", "3.11", "3.12"),
    "5.2": ("3.10", "3.11", "3.12", "3.13"),
    "6.0": ("3.12", "3.13"),
    "6.1": ("3.12", "3.13"),
}
PAIRS = [(py, dj) for py in PYTHONS for dj in DJANGOS if py in DJANGOS[dj]]

# Hangs are found per test (pytest-timeout and faulthandler_timeout in
# pyproject.toml). This limit on a whole pytest run is only the backstop for a
# hang neither could end: far above what a pair takes on a busy machine (a pair
# once passed in 178 s, on 2 cores shared with another pair and more), so that
# a slow run is never cut short and mistaken for a hung one.
PYTEST_TIMEOUT = int(os.environ.get("RAINCHECK_MATRIX_TIMEOUT", "1500"))
# The pair whose suite ``make test`` has just run ("3.13-django6.1"; CI sets it,
# .ci/run): the matrix skips it rather than run the same tests again.
COVERED = os.environ.get("RAINCHECK_MATRIX_COVERED", "")
# "all": the server tests on every pair, not only on SERVER_PAIRS.
SERVERS_EVERYWHERE = os.environ.get("RAINCHECK_MATRIX_SERVERS", "") == "all"
PYTEST_NO_TESTS = 5  # pytest.ExitCode.NO_TESTS_COLLECTED
# coreutils timeout: 124 after its SIGINT, 128 + 9 when it had to SIGKILL.
TIMEOUT_EXPIRED = (124, 137)
KILL_AFTER = 30
# What only a stuck test prints: faulthandler's dump ("Timeout (0:05:30)!" then
# the stacks) and pytest-timeout's failure ("Timeout (>300.0s) from pytest-timeout").
HANG_EVIDENCE = re.compile(r"^Timeout \(\d+:\d\d:\d\d(\.\d+)?\)!$|from pytest-timeout", re.M)
PYTEST_TIMEOUT_FAILURE = "from pytest-timeout"
# A test function's frame in such a dump: which test was stuck.
STUCK_TEST = re.compile(r'File "(?:[^"]*/)?(tests/[^"]+\.py)", line \d+ in (test_\w+)')


def _pyenv_root() -> Path:
    return Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv")


def _pyenv_python(minor: str) -> Path | None:
    """The newest plain CPython ``minor.N`` build under pyenv, if any."""
    builds = []
    for exe in _pyenv_root().glob(f"versions/{minor}.*/bin/python{minor}"):
        patch = re.fullmatch(rf"{re.escape(minor)}\.(\d+)", exe.parent.parent.name)
        if patch and os.access(exe, os.X_OK):
            builds.append((int(patch.group(1)), exe))
    return max(builds)[1] if builds else None


def _find_pythons() -> dict[str, str | None]:
    """Map each minor version to its interpreter, putting pyenv builds on PATH.

    pyenv's *shims* directory is usually on PATH too, but its ``python3.X``
    shims only work for the selected pyenv version; the real ``bin`` directory
    placed in front of them always works.
    """
    path = os.environ.get("PATH", "").split(os.pathsep)
    found: dict[str, str | None] = {}
    for minor in PYTHONS:
        build = _pyenv_python(minor)
        if build is not None and str(build.parent) not in path:
            path.insert(0, str(build.parent))
        os.environ["PATH"] = os.pathsep.join(path)
        found[minor] = shutil.which(f"python{minor}")
    return found


INTERPRETERS = _find_pythons()


def _covering_pairs(pairs: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """Few of ``pairs`` that together hold each of their Pythons and Django releases.

    Pairs that bring two versions not yet held are taken first, then any pair
    that brings one: for this matrix, the diagonal 3.10 x 4.2 ... 3.13 x 6.1.
    """
    chosen: list[tuple[str, str]] = []
    for needed in (2, 1):
        for py, dj in pairs:
            held_py = {p for p, _ in chosen}
            held_dj = {d for _, d in chosen}
            if (py not in held_py) + (dj not in held_dj) >= needed:
                chosen.append((py, dj))
    return chosen


# Only pairs whose interpreter is here: a missing 3.10 must not leave 4.2's
# server tests unrun.
SERVER_PAIRS = _covering_pairs([(py, dj) for py, dj in PAIRS if INTERPRETERS[py]])

nox.options.sessions = ["tests"]
nox.options.reuse_venv = "yes"
# Never fetch interpreters from the internet: a missing one means a skipped pair.
nox.options.download_python = "never"
# nox turns missing interpreters into failures when $CI is set; here they are
# skipped (and listed in the summary) wherever the matrix runs.
nox.options.error_on_missing_interpreters = False
# One session per core. One more was faster (the sessions wait on pip and on the
# test servers), but the server tests' timing then had too little headroom: a
# uvicorn disconnect test once saw Django finish a view it usually cancels.
nox.options.parallel = os.cpu_count() or 1


def _results_file(python: str, django: str) -> Path:
    return RESULTS / f"py{python}-django{django}.xml"


@nox.session(allow_parallel=True)
@nox.parametrize(
    ("python", "django"),
    PAIRS,
    ids=[f"{py}-django{dj}" for py, dj in PAIRS],
)
def tests(session: nox.Session, django: str) -> None:
    """pip install -e . with the test group and this Django release, then run pytest."""
    python = str(session.python)
    if f"{python}-django{django}" == COVERED:
        session.skip("the same Python and Django as make test, which has just run the suite")
    junit = _results_file(python, django)
    log = junit.with_suffix(".log")
    junit.parent.mkdir(parents=True, exist_ok=True)
    for stale in (junit, junit.with_suffix(".json"), log):
        stale.unlink(missing_ok=True)

    _install(session, django)
    pytest_args = list(session.posargs)
    servers = SERVERS_EVERYWHERE or (python, django) in SERVER_PAIRS
    if not servers and "-m" not in pytest_args:
        pytest_args += ["-m", "not server"]
    junit.with_suffix(".json").write_text(
        json.dumps({"pytest_args": pytest_args, "servers": servers})
    )
    limit = []
    if shutil.which("timeout"):  # coreutils
        limit = ["timeout", "--signal=INT", f"--kill-after={KILL_AFTER}", str(PYTEST_TIMEOUT)]
    started = time.monotonic()
    try:
        with _tee(log) as output:
            session.run(
                *limit,
                "python",
                "-m",
                "pytest",
                f"--junitxml={junit}",
                *pytest_args,
                external=True,
                stdout=output,
            )
    except CommandFailed as exc:
        if exc.return_code == PYTEST_NO_TESTS:
            session.error("pytest ran no tests (exit code 5: none collected, or all deselected)")
        took = time.monotonic() - started
        if exc.return_code in TIMEOUT_EXPIRED and took >= PYTEST_TIMEOUT:
            session.error(_backstop_reason(log, took))
        raise


def _backstop_reason(log: Path, took: float) -> str:
    """Why the backstop stopped pytest: a hung test, if one left its stacks, else slowness."""
    try:
        text = log.read_text(errors="replace")
    except OSError:
        text = ""
    stopped = f"pytest stopped by the {PYTEST_TIMEOUT} s backstop after {took:.0f} s"
    if evidence := HANG_EVIDENCE.search(text):
        test = STUCK_TEST.search(text, evidence.start())
        which = f"{test.group(1)}::{test.group(2)}" if test else "a test"
        return f"{stopped}: {which} hangs (its stacks are above, and in {log.name})"
    return (
        f"{stopped}, unfinished; no test was stuck (no timeout dump): the machine was too"
        f" slow for RAINCHECK_MATRIX_TIMEOUT, not hung"
    )


@contextlib.contextmanager
def _tee(path: Path) -> Iterator[int]:
    """A pipe's write end: what is written to it goes to stdout and to ``path``.

    The file lets the session tell a hang from slowness afterwards; stdout
    keeps the output live when a single session runs.
    """
    read_fd, write_fd = os.pipe()

    def copy() -> None:
        with open(read_fd, "rb", buffering=0) as pipe, path.open("wb") as log:
            while chunk := pipe.read(65536):
                sys.stdout.buffer.write(chunk)
                sys.stdout.flush()
                log.write(chunk)
                log.flush()

    copier = threading.Thread(target=copy, name="tee", daemon=True)
    copier.start()
    try:
        yield write_fd
    finally:
        os.close(write_fd)
        # EOF comes once pytest and whatever inherited its stdout are gone;
        # a straggler still holding it must not hold the session too.
        copier.join(timeout=KILL_AFTER)


def _install(session: nox.Session, django: str) -> None:
    """pip install raincheck, its test group and Django, unless a reused venv has them."""
    pyproject_file = ROOT / "pyproject.toml"
    pyproject = nox.project.load_toml(pyproject_file)
    # The Tasks tests need django-tasks-db, which needs Django >= 5.2; on 4.2 only
    # the django-tasks backport can be tested. The Redis engines (the "scale"
    # groups) need 5.2 too, and django-tasks-celery Django 6 (its group's marker
    # leaves Python < 3.12 out); a test whose engine is missing says so as it skips.
    # django-debug-toolbar 8 (the "toolbar" group) needs Django 5.2 as well.
    tasks = ["django-tasks"]
    if django != "4.2":
        groups = ["tasks", "scale", "toolbar", *(["scale-django6"] if django >= "6" else [])]
        tasks = list(nox.project.dependency_groups(pyproject, *groups))
    # The observability libraries install on every pair (docs/observability.rst's
    # recipes are tested everywhere); pip takes django-structlog 10 on Django 4.2.
    requirements = [
        "-e",
        ".",
        *nox.project.dependency_groups(pyproject, "test", "observability"),
        *tasks,
        f"django~={django}.0",
    ]
    digest = hashlib.sha256(pyproject_file.read_bytes())
    digest.update(shlex.join(requirements).encode())
    stamp = Path(session.virtualenv.location) / ".raincheck-installed"
    if stamp.is_file() and stamp.read_text() == digest.hexdigest():
        session.log("Reused virtualenv is up to date with pyproject.toml: no pip install")
        return
    session.env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    session.install(*requirements)
    stamp.write_text(digest.hexdigest())


# --- summary (``python noxfile.py summary REPORT``, run by ``make matrix``) ---


def _junit_counts(path: Path) -> dict[str, int]:
    """Totals of a pytest JUnit XML file: tests, failures, errors, skipped."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
    keys = ("tests", "failures", "errors", "skipped")
    counts = {key: sum(int(s.get(key, "0")) for s in suites) for key in keys}
    # Failures and errors that pytest-timeout raised: those tests hung.
    counts["hung"] = sum(
        1
        for case in root.iter("testcase")
        if any(
            PYTEST_TIMEOUT_FAILURE in (outcome.get("message") or "")
            for outcome in (*case.findall("failure"), *case.findall("error"))
        )
    )
    return counts


def _skip_reasons(path: Path) -> dict[str, int]:
    """Each distinct reason pytest gave for a skip in a JUnit XML file, with its count."""
    try:
        root = ET.parse(path).getroot()
    except (OSError, ET.ParseError):
        return {}
    reasons: dict[str, int] = {}
    for skipped in root.iter("skipped"):
        if skipped.get("type") == "pytest.xfail":
            continue
        # pytest writes "file:line: reason"; the reason is what tells why.
        reason = re.sub(r"^.*?:\d+: ", "", skipped.get("message") or "skipped")
        reasons[reason] = reasons.get(reason, 0) + 1
    return reasons


def _duration(seconds: float) -> str:
    # Rounded first: 179.6 s is "3 min 00 s", not "2 min 60 s".
    whole = round(seconds)
    return f"{whole} s" if whole < 60 else f"{whole // 60} min {whole % 60:02d} s"


def _describe_tests(counts: dict[str, int]) -> str:
    if not counts:
        return "pytest did not finish"
    if not counts["tests"]:
        return "no tests ran"
    passed = counts["tests"] - counts["failures"] - counts["errors"] - counts["skipped"]
    parts = [f"{passed} tests passed"]
    labels = {"failures": "failed", "errors": "errors", "skipped": "skipped/xfailed"}
    parts += [f"{counts[key]} {label}" for key, label in labels.items() if counts[key]]
    if counts.get("hung"):
        parts.append(f"{counts['hung']} of them hung (stopped by pytest-timeout)")
    return ", ".join(parts)


def _pair(entry: dict[str, Any]) -> tuple[str, str]:
    """(python, django) of a session in nox's report, from its ``3.X-djangoY.Z`` id."""
    for signature in entry.get("signatures") or ():
        if match := re.search(r"\((\d+\.\d+)-django(\d+\.\d+)\)", signature):
            return match.group(1), match.group(2)
    return "?", str((entry.get("args") or {}).get("django", "?"))


def _pytest_args(python: str, django: str) -> tuple[str, bool] | None:
    """The pytest arguments a pair ran with, and whether its server tests were due."""
    try:
        data = json.loads(_results_file(python, django).with_suffix(".json").read_text())
    except (OSError, ValueError):
        return None
    return shlex.join(data["pytest_args"]), bool(data.get("servers", True))


def summary(report_path: Path, wall_seconds: float | None = None) -> int:
    """Print which pairs ran, passed, failed or were skipped; return nox's exit code."""
    try:
        report: dict[str, Any] = json.loads(report_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        print(f"matrix summary: no nox report ({exc})")
        return 1
    lines: list[str] = []
    skipped: list[str] = []
    used_args: set[str] = set()
    tally = {"ok": 0, "failing": 0, "skipped": 0}
    for entry in report["sessions"]:
        python, django = _pair(entry)
        pair = f"Python {python} x Django {django}"
        status = {"success": "ok", "skipped": "skipped"}.get(entry["result"], "failing")
        tally[status] += 1
        if status == "skipped":
            skipped.append(f"  {pair}: {entry.get('reason') or 'skipped'}")
            continue
        tests = entry.get("reason") or _describe_tests(_junit_counts(_results_file(python, django)))
        ran_with = _pytest_args(python, django)
        if ran_with is not None and not ran_with[1]:
            tests += " (server tests left out, see below)"
        took = _duration(float(entry.get("duration") or 0))
        lines.append(f"  {pair:<26} {status.upper():<8} {took:>12}   {tests}")
        for reason, count in sorted(_skip_reasons(_results_file(python, django)).items()):
            lines.append(f"      skipped {count}: {reason}")
        if ran_with is not None:
            used_args.add(ran_with[0])

    rule = "=" * 78
    print(f"\n{rule}\nVersion matrix summary\n{rule}")
    print(f"  {'pair':<26} {'result':<8} {'time':>12}   pytest")
    print("\n".join(lines) if lines else "  (no pair ran)")
    if skipped:
        print(f"Skipped (interpreters are looked for on PATH and in {_pyenv_root()}/versions):")
        print("\n".join(skipped))
    for pytest_args in sorted(used_args):
        print(f"pytest arguments: {pytest_args or 'none (the whole suite, server tests included)'}")
    if not SERVERS_EVERYWHERE:
        full = ", ".join(f"{py} x {dj}" for py, dj in SERVER_PAIRS)
        print(
            f"server tests on {full or 'no pair'}: each Python and each Django once"
            " (RAINCHECK_MATRIX_SERVERS=all: on every pair)"
        )
    took = "" if wall_seconds is None else f" in {_duration(wall_seconds)}"
    print(
        f"matrix: {tally['ok'] + tally['failing']} of {len(report['sessions'])} pairs ran{took}:"
        f" {tally['ok']} ok, {tally['failing']} failing, {tally['skipped']} skipped"
    )
    print(rule)
    return 0 if report.get("result") else 1


if __name__ == "__main__":
    if len(sys.argv) not in {3, 4} or sys.argv[1] != "summary":
        sys.exit(f"usage: {sys.argv[0]} summary NOX_REPORT.json [WALL_SECONDS]")
    sys.exit(summary(Path(sys.argv[2]), float(sys.argv[3]) if sys.argv[3:] else None))
