"""Async jobs in a gevent-patched process (raincheck.greenlets), seen from inside one.

The scenarios run in a child process, ``tests/gevent_process.py``, which
monkey-patches itself first: patching this pytest process would change every
other test. The child runs them once and prints what its jobs saw.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from raincheck import greenlets

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("gevent") is None,
    reason=f"gevent is not installed for {sys.executable}",
)

REPO_ROOT = Path(__file__).resolve().parent.parent
CHILD_TIMEOUT = 60


@pytest.fixture(scope="module")
def seen() -> dict[str, Any]:
    """What the jobs of a gevent-patched child process saw."""
    child = subprocess.run(
        [sys.executable, "-m", "gevent.monkey", "--module", "tests.gevent_process"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    assert child.returncode == 0, f"the child failed:\n{child.stdout}\n{child.stderr}"
    result: dict[str, Any] = json.loads(child.stdout)
    return result


def test_this_process_is_not_patched() -> None:
    """Without gevent's monkey-patching, raincheck runs async jobs as it always does."""
    assert not greenlets.patched()


def test_an_async_jobs_loop_runs_on_a_native_thread(seen: dict[str, Any]) -> None:
    """An async job's event loop runs on an OS thread other than the greenlets'."""
    assert seen["sleeper_os_thread_is_main"] is False


def test_greenlets_see_no_loop_while_an_async_job_awaits(seen: dict[str, Any]) -> None:
    """While an async job awaits asyncio.sleep, other greenlets see no loop and use the ORM."""
    assert seen["sleeper_still_awaiting"]
    assert len(seen["requests"]) == 8
    for request in seen["requests"]:
        assert (request["loop"], request["orm"]) == (False, 1), seen["requests"]


def test_async_jobs_sync_calls_use_the_orm_where_no_loop_runs(seen: dict[str, Any]) -> None:
    """An async job's sync_to_async (both kinds) and to_thread calls run where the ORM works."""
    calls = seen["async_job"]
    for call in calls.values():
        assert call["loop"] is False, calls
        assert call["orm"] == 1, calls


def test_an_async_jobs_thread_sensitive_calls_share_a_greenlet_of_its_own(
    seen: dict[str, Any],
) -> None:
    """An async job's thread-sensitive calls share one greenlet, not that of the job's caller."""
    calls = seen["async_job"]
    assert calls["thread_sensitive"]["ident"] == calls["thread_sensitive_again"]["ident"]
    assert calls["thread_sensitive"]["ident"] != seen["async_job_caller"]
    assert calls["to_thread"]["ident"] != calls["thread_sensitive"]["ident"]


def test_an_async_jobs_exception_fails_that_job(seen: dict[str, Any]) -> None:
    """An exception raised in an async job's native thread is reported as that job's failure."""
    assert seen["failures"] == ["ValueError"]
    assert seen["stats"]["failed"] == 1


def test_an_async_job_runs_while_another_greenlet_runs_a_loop(seen: dict[str, Any]) -> None:
    """Another greenlet's running loop (seen by all of its OS thread) does not fail a job."""
    assert seen["beside_a_loop"] == "ran"
    assert seen["failures"] == ["ValueError"]  # only raises(), on purpose


def test_a_job_run_inside_an_async_job_runs_where_no_loop_runs(seen: dict[str, Any]) -> None:
    """A sync job an async job runs itself (RAINCHECK_IMMEDIATE) runs where the ORM works."""
    assert seen["run_by_async_job"]["loop"] is False
    assert seen["run_by_async_job"]["orm"] == 1


def test_native_threads_give_back_their_gevent_hubs(seen: dict[str, Any]) -> None:
    """Fifty async jobs leave no file descriptor behind (each native thread frees its hub)."""
    assert seen["descriptors_gained"] == 0


def test_async_jobs_with_no_room_are_awaited_together_by_their_caller(
    seen: dict[str, Any],
) -> None:
    """A request's async jobs that find the pool full (``caller_runs``) run on one
    loop in a native thread, together: each saw the other arrive."""
    assert seen["met"] == [2, 2]
