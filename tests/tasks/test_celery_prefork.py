"""Jobs scheduled by a Celery task run, although Celery's prefork pool ends its
child processes with ``os._exit()``: raincheck drains on the
``worker_process_shutdown`` signal Celery sends just before (docs/servers.rst).

Its own ``redis-server`` as the broker and a real ``celery worker``, both stopped
by PID; ``--max-tasks-per-child 1`` ends a child right after each task.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

pytest.importorskip("celery", reason="Celery is not installed (pip install --group scale)")

from tests.tasks.processes import REPO_ROOT, Process, wait_until  # noqa: E402
from tests.tasks.redis_server import REDIS_SERVER, RedisServer  # noqa: E402

BATCHES = 2
JOBS_PER_TASK = 5  # tests/tasks/celery_prefork.py


@pytest.mark.skipif(
    REDIS_SERVER is None,
    reason="redis-server is not installed (apt-get install redis-server; .ci/run does)",
)
def test_jobs_of_a_task_run_before_its_prefork_child_ends(tmp_path: Path) -> None:
    """Each child ends right after its task, its jobs still queued: they all run, once."""
    events = tmp_path / "events.txt"
    redis = RedisServer(tmp_path)
    env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
    env |= {
        "PYTHONPATH": str(REPO_ROOT),
        "RAINCHECK_TEST_BROKER": f"{redis.url}/0",
        "RAINCHECK_TEST_EVENTS": str(events),
    }
    worker_args = ["-A", "tests.tasks.celery_prefork", "worker", "-c", "1"]
    worker_args += ["--max-tasks-per-child", "1", "-l", "INFO"]
    worker = Process("worker", worker_args, env, tmp_path, module="celery")

    def ran() -> list[str]:
        return sorted(events.read_text().splitlines()) if events.exists() else []

    expected = sorted(f"ran {b}-{n}" for b in range(BATCHES) for n in range(JOBS_PER_TASK))
    try:
        wait_until(lambda: " ready." in worker.output(), "the worker to start", worker)
        enqueue = (
            "from tests.tasks.celery_prefork import schedule_notes\n"
            f"for batch in range({BATCHES}): schedule_notes.delay(batch)"
        )
        subprocess.run(
            [sys.executable, "-c", enqueue],
            cwd=REPO_ROOT,
            env=env,
            check=True,
            timeout=60,
        )
        wait_until(lambda: len(ran()) >= len(expected), "every job to run", worker)
    finally:
        worker.stop()
        redis.stop()
    assert ran() == expected, worker.output()
