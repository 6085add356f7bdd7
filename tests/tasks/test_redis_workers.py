"""End to end with Redis-backed engines: RQ (django-tasks-rq and ``rqworker``) and
Celery (django-tasks-celery, django-tasks-fennel, and ``celery worker``).

Each test starts its own ``redis-server``, a ``runserver`` and a worker started
the way its backend's documentation says, all on 127.0.0.1, all stopped by PID.
A view schedules a ``@raincheck`` job under RAINCHECK_TASKS_BACKEND; the job is
not in Redis while the view runs, is enqueued after the response, and a worker
process runs it. RQ imports a task by its path; Celery looks it up by the name
it was registered under, which only works because raincheck makes routed Tasks
as the jobs' module is imported (docs/scaling.rst). Every wait polls with a
deadline.
"""

from __future__ import annotations

import importlib.util
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.server

pytest.importorskip(
    "raincheck.backends",
    reason="needs django.tasks (Django >= 6.0) or the django-tasks backport",
    exc_type=ImportError,
)

from tests.servers.harness import free_port  # noqa: E402
from tests.tasks.processes import (  # noqa: E402
    Process,
    get,
    migrated_env,
    read_events,
    wait_for_port,
    wait_until,
)
from tests.tasks.redis_server import REDIS_SERVER, RedisServer  # noqa: E402

SETTINGS = "tests.tasks.redis_project.settings"
GREET_TASK = "raincheck.tasks.routed.tests:tasks:redis_project:tasks:greet"
FAIL_TASK = "raincheck.tasks.routed.tests:tasks:redis_project:tasks:fail"

CELERY_MISSING = (
    "django-tasks-celery is not installed (pip install --group scale-django6; "
    "it needs Python >= 3.12 and Django >= 6.0)"
)
# engine: (package, why it may be missing, worker command as `python -m MODULE ARGS`)
ENGINES: dict[str, tuple[str, str, str, list[str]]] = {
    "rq": (
        "django_tasks_rq",
        "django-tasks-rq is not installed (pip install --group scale; Django >= 5.2 here)",
        "django",
        # django-tasks-rq's README: its Job class runs the Task.
        ["rqworker", "--job-class", "django_tasks_rq.Job", "default"],
    ),
    "celery": (
        "django_tasks_celery",
        CELERY_MISSING,
        "celery",
        # Celery's Django guide: the project package holds the Celery app.
        ["-A", "tests.tasks.redis_project", "worker", "-l", "INFO", "-c", "1"],
    ),
    "fennel": (
        "django_tasks_fennel",
        "django-tasks-fennel is not installed (pip install --group scale; Django >= 5.2)",
        "celery",
        # django-tasks-fennel's README: its bundled Celery app.
        ["-A", "django_tasks_fennel.app", "worker", "-l", "INFO", "-c", "1"],
    ),
}


class Site:
    """The Redis, web server and worker of one engine; ``restart_worker()`` swaps workers."""

    def __init__(self, engine: str, data_dir: Path, env: dict[str, str]) -> None:
        self.engine = engine
        self.data_dir = data_dir
        self.env = env
        self.port = free_port()
        self.workers: list[Process] = []
        self.server = Process(
            "runserver", ["runserver", "--noreload", f"127.0.0.1:{self.port}"], env, data_dir
        )

    def start_worker(self) -> Process:
        _, _, module, args = ENGINES[self.engine]
        worker = Process(f"worker{len(self.workers) + 1}", args, self.env, self.data_dir, module)
        self.workers.append(worker)
        return worker

    def get(self, path: str) -> Any:
        status, body = get(self.port, path)
        assert status == 200, body
        return body

    def events(self) -> list[str]:
        return read_events(self.data_dir)

    def wait_for_event(self, pattern: str) -> re.Match[str]:
        found: list[re.Match[str]] = []

        def seen() -> bool:
            found[:] = [m for e in self.events() if (m := re.fullmatch(pattern, e))]
            return bool(found)

        wait_until(seen, f"an event matching {pattern!r}", self.server, *self.live_workers())
        return found[0]

    def wait_for_result(self, result_id: str, status: str) -> dict[str, Any]:
        result: dict[str, Any] = {}

        def finished() -> bool:
            result.update(self.get(f"/result/?id={result_id}"))
            return bool(result["status"] == status)

        wait_until(finished, f"result {result_id} {status}", self.server, *self.live_workers())
        return result

    def live_workers(self) -> list[Process]:
        return [w for w in self.workers if w.popen.poll() is None]

    def stop(self) -> None:
        for process in [self.server, *self.workers]:
            process.stop()


@pytest.fixture(params=list(ENGINES))
def site(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Site]:
    """A Redis of its own, a runserver and one worker of the engine; all always stopped."""
    engine: str = request.param
    package, missing, _, _ = ENGINES[engine]
    if importlib.util.find_spec(package) is None:
        pytest.skip(missing)
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    redis = RedisServer(tmp_path)
    site = None
    try:
        env = migrated_env(
            SETTINGS, tmp_path, {"RAINCHECK_ENGINE": engine, "RAINCHECK_REDIS_URL": redis.url}
        )
        site = Site(engine, tmp_path, env)
        site.start_worker()
        wait_for_port(site.port, site.server)
        yield site
    finally:
        if site is not None:
            site.stop()
        redis.stop()


def test_routed_jobs_run_on_a_separate_worker_and_survive_its_restart(site: Site) -> None:
    """A scheduled job is enqueued after the response and run by a worker; a failing one ends
    FAILED; a job queued while the worker restarts waits in Redis and runs on the new one."""
    server_pid = site.server.pid

    # Nothing reaches Redis while the view runs.
    assert site.get("/schedule/?name=ada") == {"queued_during_view": 0}
    ran = site.wait_for_event(r"job ran ada pid=(\d+)")
    assert int(ran[1]) != server_pid
    events = site.events()
    enqueued = next(e for e in events if e.startswith("task enqueued"))
    assert events.index(f"response closed pid={server_pid}") < events.index(enqueued)
    result_id = re.fullmatch(rf"task enqueued id=(\S+) pid={server_pid}", enqueued)
    assert result_id is not None, events
    result = site.wait_for_result(result_id[1], "SUCCESSFUL")
    assert result["return_value"] == "hello ada"
    assert result["task_path"] == GREET_TASK

    # A raising job ends FAILED with its exception; enqueue() gave the view its id.
    failing_id = site.get("/enqueue-fail/?message=broken")["id"]
    failed = site.wait_for_result(failing_id, "FAILED")
    assert failed["errors"] == ["builtins.ValueError"]
    assert int(site.wait_for_event(r"job failed broken pid=(\d+)")[1]) != server_pid

    # The worker goes away; a job scheduled meanwhile waits in Redis for the next one.
    first = site.workers[0]
    first.stop()
    site.get("/schedule/?name=grace")
    wait_until(lambda: site.get("/queued/")["queued"] == 1, "the job in Redis", site.server)
    assert not any(e.startswith("job ran grace") for e in site.events())
    second = site.start_worker()
    ran_after_restart = site.wait_for_event(r"job ran grace pid=(\d+)")
    assert int(ran_after_restart[1]) not in (server_pid, first.pid)
    assert site.get("/queued/")["queued"] == 0
    assert second.popen.poll() is None
