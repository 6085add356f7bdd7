"""Jobs scheduled by a task queue's job run, although the worker ends the job's
process with ``os._exit()`` (docs/servers.rst):

* Celery's prefork pool ends each child right after it sends
  ``worker_process_shutdown``: raincheck drains on that signal.
* RQ forks a work horse per job and ends it as soon as the job returns, with
  no hook at all: there raincheck runs the jobs in the caller.

Each test starts its own ``redis-server`` and a real worker, stopped by PID;
the jobs are in tests/tasks/worker_jobs.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.tasks.processes import REPO_ROOT, Process, standalone_env, wait_until
from tests.tasks.redis_server import REDIS_SERVER, RedisServer

pytestmark = [
    pytest.mark.server,
    pytest.mark.skipif(
        REDIS_SERVER is None,
        reason="redis-server is not installed (apt-get install redis-server; .ci/run does)",
    ),
]

BATCHES = 2
JOBS_PER_TASK = 4  # tests/tasks/worker_jobs.py
EXPECTED = sorted(f"ran {b}-{n}" for b in range(BATCHES) for n in range(JOBS_PER_TASK))


def _env(redis: RedisServer, events: Path) -> dict[str, str]:
    return standalone_env(RAINCHECK_TEST_BROKER=f"{redis.url}/0", RAINCHECK_TEST_EVENTS=str(events))


def _run(code: str, env: dict[str, str]) -> None:
    subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env=env, check=True, timeout=60)


def _ran(events: Path) -> list[str]:
    return sorted(events.read_text().splitlines()) if events.exists() else []


def test_jobs_of_a_celery_task_run_before_its_prefork_child_ends(tmp_path: Path) -> None:
    """``--max-tasks-per-child 1`` ends each child right after its task, its jobs
    still queued: they all run, once."""
    pytest.importorskip("celery", reason="Celery is not installed (pip install --group scale)")
    events, redis = tmp_path / "events.txt", RedisServer(tmp_path)
    env = _env(redis, events)
    worker_args = ["-A", "tests.tasks.celery_prefork", "worker", "-c", "1"]
    worker_args += ["--max-tasks-per-child", "1", "-l", "INFO"]
    worker = Process("worker", worker_args, env, tmp_path, module="celery")
    try:
        wait_until(lambda: " ready." in worker.output(), "the worker to start", worker)
        _run(
            "from tests.tasks.celery_prefork import schedule_notes\n"
            f"for batch in range({BATCHES}): schedule_notes.delay(batch)",
            env,
        )
        wait_until(lambda: len(_ran(events)) >= len(EXPECTED), "every job to run", worker)
    finally:
        worker.stop()
        redis.stop()
    assert _ran(events) == EXPECTED, worker.output()


def test_jobs_of_an_rq_job_run_before_its_work_horse_ends(tmp_path: Path) -> None:
    """RQ's work horse ends as the job returns: its jobs ran in it, once, by then."""
    pytest.importorskip("rq", reason="RQ is not installed (pip install --group scale)")
    events, redis = tmp_path / "events.txt", RedisServer(tmp_path)
    env = _env(redis, events)
    try:
        _run(
            "import os\nfrom redis import Redis\nfrom rq import Queue\n"
            "queue = Queue(connection=Redis.from_url(os.environ['RAINCHECK_TEST_BROKER']))\n"
            f"for batch in range({BATCHES}):\n"
            "    queue.enqueue('tests.tasks.worker_jobs.schedule_notes', batch)",
            env,
        )
        worker_args = ["worker", "--burst", "--url", env["RAINCHECK_TEST_BROKER"]]
        worker = Process("worker", worker_args, env, tmp_path, module="rq.cli")
        try:
            code = worker.popen.wait(timeout=60)
        finally:
            worker.stop()
        assert code == 0, worker.output()
    finally:
        redis.stop()
    assert _ran(events) == EXPECTED, worker.output()
