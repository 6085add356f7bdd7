"""Stopping: what exit prints, waiting on yourself, forks in jobs, the GIL at the deadline."""

from __future__ import annotations

import ctypes
import logging
import multiprocessing
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import pytest
from asgiref.sync import sync_to_async
from django.test import override_settings

import raincheck
from raincheck import raincheck as decorate
from raincheck import signals
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.helpers import current_pool, in_thread, spy_on_idle
from tests.app.jobs import HOLD_LIMIT, Gate
from tests.tasks.processes import standalone_env


def _python(code: str | Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` (a string for ``-c``, or a script) in a fresh interpreter without settings."""
    program = [str(code)] if isinstance(code, Path) else ["-c", code]
    return subprocess.run(
        [sys.executable, *program, *args],
        cwd=cwd,
        env=standalone_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_importing_raincheck_without_settings_prints_nothing_at_exit(tmp_path: Path) -> None:
    """``import raincheck`` (as pytest's plugin does) leaves no traceback at exit."""
    done = _python("import raincheck, raincheck.pytest_plugin", tmp_path)
    assert (done.returncode, done.stderr) == (0, "")


def test_the_app_imports_no_celery_to_drain_at_its_exit(tmp_path: Path) -> None:
    """The drain is connected to Celery's worker_process_shutdown only where Celery
    is already imported: raincheck never imports it itself."""
    done = _python(
        "from django.conf import settings; "
        "settings.configure(INSTALLED_APPS=['raincheck']); "
        "import django, sys; django.setup(); "
        "print([name for name in ('celery', 'billiard') if name in sys.modules])",
        tmp_path,
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, "[]\n", "")


def test_invalid_settings_with_no_job_print_nothing_at_exit(tmp_path: Path) -> None:
    """An invalid setting is the system checks' business: exit says nothing if no job ran."""
    done = _python(
        "from django.conf import settings; "
        "settings.configure(INSTALLED_APPS=['raincheck'], RAINCHECK_MAX_WORKERS=0); "
        "import django; django.setup()",
        tmp_path,
    )
    assert (done.returncode, done.stderr) == (0, "")


def test_settings_broken_after_a_job_log_one_line_at_exit(tmp_path: Path) -> None:
    """Settings that turn invalid while a pool exists: one line at exit, not a traceback."""
    done = _python(
        "from django.conf import settings; "
        "settings.configure(INSTALLED_APPS=['raincheck']); "
        "import django; django.setup(); "
        "from raincheck import raincheck; "
        "job = raincheck(print); job.schedule('ran'); "
        "from django.test.utils import override_settings; "
        "override_settings(RAINCHECK_SHUTDOWN_TIMEOUT=-1).enable()",
        tmp_path,
    )
    assert done.returncode == 0
    assert "Traceback" not in done.stderr
    assert done.stderr.count("\n") == 1, done.stderr
    assert "RAINCHECK_SHUTDOWN_TIMEOUT must be" in done.stderr


@decorate
def shut_down_from_inside() -> None:
    raincheck.shutdown(timeout=HOLD_LIMIT)


@decorate
def wait_idle_from_inside() -> None:
    wait_idle(HOLD_LIMIT)


@pytest.mark.parametrize("job", [shut_down_from_inside, wait_idle_from_inside])
def test_waiting_for_the_pool_from_inside_a_job_raises(job: Any, received: Any) -> None:
    """shutdown() or wait_idle() in a job would wait for itself: RuntimeError, at once."""
    failed = received(signals.job_failed)
    job.schedule()
    wait_idle()
    [sent] = failed
    assert isinstance(sent["exception"], RuntimeError)
    assert "from inside a raincheck job" in str(sent["exception"])


events: list[str] = []
queue_is_full = threading.Event()


@decorate
async def schedule_from_a_helper_thread() -> None:
    """An async job whose sync helper (say, a post_save receiver) schedules another job."""
    await sync_to_async(queue_is_full.wait)(HOLD_LIMIT)
    await sync_to_async(jobs.remember.schedule)("from the helper")


@override_settings(
    RAINCHECK_MAX_WORKERS=1,
    RAINCHECK_MAX_QUEUE=1,
    RAINCHECK_BACKPRESSURE="block",
    RAINCHECK_BLOCK_TIMEOUT=10 * HOLD_LIMIT,
)
def test_block_never_waits_in_a_thread_that_a_job_waits_on() -> None:
    """A job's sync_to_async thread that schedules into a full queue runs the job itself."""
    queue_is_full.clear()
    schedule_from_a_helper_thread.schedule()
    jobs.remember.schedule("filler")  # the one worker is busy: the queue is now full
    queue_is_full.set()
    wait_idle(HOLD_LIMIT)
    assert sorted(jobs.values()) == ["filler", "from the helper"]


@decorate
def fork_and_return(path: str, exit_in_child: bool) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # forking with threads alive
        pid = os.fork()
    if pid == 0:
        if exit_in_child:
            sys.exit(0)
    else:
        Path(path).write_text(str(pid))


@decorate
def append_pid(path: str) -> None:
    with open(path, "a") as file:
        file.write(f"{os.getpid()}\n")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork()")
@pytest.mark.parametrize("exit_in_child", [False, True], ids=["returns", "sys.exit"])
@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_a_fork_in_a_job_never_runs_the_parents_jobs_in_the_child(
    tmp_path: Path, exit_in_child: bool
) -> None:
    """The child of a job's fork ends with the job's thread; the parent runs the rest once."""
    child_pid, ran = tmp_path / "child", tmp_path / "ran"
    gate = Gate()
    jobs.held.schedule(gate, "hold")  # so that all the jobs below queue behind it
    assert gate.started.wait(HOLD_LIMIT)
    fork_and_return.schedule(str(child_pid), exit_in_child)
    for _ in range(20):
        append_pid.schedule(str(ran))
    gate.release.set()
    wait_idle(HOLD_LIMIT)
    pid = int(child_pid.read_text())
    _, status = os.waitpid(pid, 0)  # returns: the child ended by itself
    assert os.waitstatus_to_exitcode(status) == 0
    assert ran.read_text().split() == [str(os.getpid())] * 20


libc = ctypes.PyDLL(None)  # PyDLL: calls into it keep the GIL


@decorate
def hold_the_gil(gate: Gate, seconds: float) -> None:
    gate.started.set()
    assert gate.release.wait(HOLD_LIMIT)
    libc.usleep(int(seconds * 1_000_000))


def test_a_job_holding_the_gil_past_the_deadline_is_reported(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The drain cannot run while C code holds the GIL; it says so as soon as it can."""
    gate = Gate()
    hold_the_gil.schedule(gate, 2.0)
    assert gate.started.wait(HOLD_LIMIT)
    draining = spy_on_idle(current_pool())

    def release_once_the_drain_waits() -> None:
        assert draining.wait(HOLD_LIMIT)
        gate.release.set()

    join = in_thread(release_once_the_drain_waits)
    caplog.set_level(logging.WARNING, logger="raincheck")
    raincheck.shutdown(timeout=0.1)
    join()
    assert "after its 0.1 s shutdown timeout" in caplog.text
    assert "tests.test_drain.hold_the_gil" in caplog.text


MULTIPROCESSING_CHILD = """
import asyncio, importlib, sys, time
from django.conf import settings
settings.configure(INSTALLED_APPS=["raincheck"], RAINCHECK_MAX_WORKERS=1)
import django
django.setup()
from raincheck import raincheck

@raincheck
def note(path, n):
    time.sleep(0.02)  # the others still queued when the child's target returns
    with open(path, "a") as file:
        file.write(f"sync {n}\\n")

@raincheck
async def note_async(path, n):
    await asyncio.sleep(0.02)
    with open(path, "a") as file:
        file.write(f"async {n}\\n")

def child(path):
    for n in range(5):
        note.schedule(path, n)
        note_async.schedule(path, n)

if __name__ == "__main__":
    package, method, path = sys.argv[1:]
    context = importlib.import_module(package).get_context(method)
    process = context.Process(target=child, args=(path,))
    process.start()
    process.join(60)
    sys.exit(process.exitcode)
"""


@pytest.mark.parametrize(
    ("package", "method"),
    [("multiprocessing", "fork"), ("multiprocessing", "spawn"), ("billiard", "fork")],
    ids=["fork", "spawn", "billiard-fork"],
)
def test_a_multiprocessing_child_runs_its_queued_jobs_before_it_ends(
    tmp_path: Path, package: str, method: str
) -> None:
    """multiprocessing ends a forked child with os._exit(), skipping atexit: the
    drain runs from multiprocessing's own exit hook there (granian's workers),
    and from billiard's, which is the same (Celery's prefork pool). A spawned
    child runs both hooks, and each job still runs once."""
    pytest.importorskip(package)
    if method not in multiprocessing.get_all_start_methods():
        pytest.skip(f"no {method!r} start method here")
    script, ran = tmp_path / "child.py", tmp_path / "ran"
    script.write_text(MULTIPROCESSING_CHILD)
    done = _python(script, tmp_path, package, method, str(ran))
    assert (done.returncode, done.stderr) == (0, "")
    expected = [f"{kind} {n}" for kind in ("async", "sync") for n in range(5)]
    assert sorted(ran.read_text().splitlines()) == expected


SIGTERM_DURING_THE_EXIT_DRAIN = """
import os, signal, sys, threading
from django.conf import settings
settings.configure(
    INSTALLED_APPS=["raincheck"], RAINCHECK_MAX_WORKERS=1, RAINCHECK_DRAIN_ON_SIGTERM=True
)
import django
django.setup()
from raincheck import process, raincheck
from tests.app.helpers import spy_on_idle
from tests.app.jobs import HOLD_LIMIT

spying = threading.Event()

@raincheck
def note(path, n):
    if n == 0:
        assert spying.wait(HOLD_LIMIT)
        # The exit drain, on the main thread, waits for the pool: a supervisor
        # (hypercorn's, for its last worker) sends SIGTERM now.
        assert draining.wait(HOLD_LIMIT)
        os.kill(os.getpid(), signal.SIGTERM)
    with open(path, "a") as file:
        file.write(f"{n}\\n")

for n in range(10):
    note.schedule(sys.argv[1], n)
draining = spy_on_idle(process.current().pool)
spying.set()
# The script ends: the atexit drain runs on this thread.
"""


def test_sigterm_during_the_exit_drain_lets_it_finish(tmp_path: Path) -> None:
    """With RAINCHECK_DRAIN_ON_SIGTERM, a SIGTERM that interrupts the atexit drain
    lets it finish: every queued job runs, then the process ends as it was going to."""
    script, ran = tmp_path / "exiting.py", tmp_path / "ran"
    script.write_text(SIGTERM_DURING_THE_EXIT_DRAIN)
    done = _python(script, tmp_path, str(ran))
    assert (done.returncode, done.stderr) == (0, "")
    assert sorted(map(int, ran.read_text().split())) == list(range(10)), done.stderr
