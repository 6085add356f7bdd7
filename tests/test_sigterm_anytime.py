"""SIGTERM at any moment, with RAINCHECK_DRAIN_ON_SIGTERM: the process ends, and no job is lost.

The signal handler runs on the main thread between two bytecodes, possibly
while that thread holds one of raincheck's locks (here: a loop handing jobs
off outside any request, as a management command does).
"""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.servers.harness import REPO_ROOT

pytestmark = pytest.mark.server

RUNS = 20
# The child's RAINCHECK_SHUTDOWN_TIMEOUT is 5 s; past this, it hangs.
EXIT_LIMIT = 5.0 + 25.0


def _lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_sigterm_at_random_moments_never_hangs_and_loses_no_job(tmp_path: Path) -> None:
    """20 SIGTERMs at random points of a scheduling loop: each run exits, every job ran."""
    rng = random.Random(1234)
    for run in range(RUNS):
        events, log = tmp_path / f"events-{run}", tmp_path / f"stderr-{run}"
        with log.open("w") as stderr:
            child = subprocess.Popen(
                [sys.executable, "-m", "tests.app.sigterm_loop", str(events)],
                cwd=REPO_ROOT,
                stderr=stderr,
            )
        try:
            wanted = rng.randrange(1, 400)
            deadline = time.monotonic() + EXIT_LIMIT
            while len(_lines(events)) < wanted and child.poll() is None:
                assert time.monotonic() < deadline, "the loop never got going"
                time.sleep(0.001)
            child.send_signal(signal.SIGTERM)
            try:
                child.wait(timeout=EXIT_LIMIT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"run {run}: still alive {EXIT_LIMIT} s after SIGTERM (a hang)")
        finally:
            if child.poll() is None:
                child.kill()
                child.wait()
        assert child.returncode == -signal.SIGTERM, (
            f"run {run}: exit {child.returncode}\n{log.read_text()}"
        )
        lines = _lines(events)
        scheduled = {line.split()[1] for line in lines if line.startswith("scheduled ")}
        ran = [line.split()[1] for line in lines if line.startswith("ran ")]
        assert scheduled, f"run {run}: nothing was scheduled"
        assert scheduled <= set(ran), f"run {run}: lost {sorted(scheduled - set(ran), key=int)}"
        assert len(ran) == len(set(ran)), f"run {run}: a job ran twice"
