"""Under uvicorn (ASGI): async tasks and async ``@raincheck`` jobs from async views run to
completion on the pool, after the response, while the event loop keeps serving requests."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.server

for module, why in (
    ("uvicorn", "uvicorn is not installed (pip install --group test)"),
    ("django_tasks_db", "the test project needs django-tasks-db (pip install --group tasks)"),
):
    if importlib.util.find_spec(module) is None:
        pytest.skip(why, allow_module_level=True)
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

SETTINGS = "tests.tasks.db_project.settings_local"


@pytest.fixture
def uvicorn(tmp_path: Path) -> Iterator[tuple[Process, int]]:
    """uvicorn serving the test project; always stopped."""
    env = migrated_env(SETTINGS, tmp_path)
    port = free_port()
    server = Process(
        "uvicorn",
        [
            "tests.tasks.db_project.asgi:application",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--lifespan",
            "off",
        ],
        env,
        tmp_path,
        module="uvicorn",
    )
    try:
        wait_for_port(port, server)
        yield server, port
    finally:
        server.stop()


def _has(tmp_path: Path, prefix: str) -> bool:
    return any(event.startswith(prefix) for event in read_events(tmp_path))


def test_async_task_and_async_job_run_to_completion_under_uvicorn(
    uvicorn: tuple[Process, int], tmp_path: Path
) -> None:
    """An async task awaits on raincheck's event loop while another async job runs; both finish."""
    server, port = uvicorn
    status, body = get(port, "/async-task/?marker=release")
    assert (status, body) == (200, {"status": "READY"})
    wait_until(lambda: _has(tmp_path, "async task started"), "the async task's start", server)

    # The task is still running: the server answers, and runs a second (async) job.
    assert get(port, "/async-job/?name=ada") == (200, {})
    wait_until(lambda: _has(tmp_path, "async job ran"), "the async job", server)
    assert not _has(tmp_path, "task finished")

    (tmp_path / "release").touch()
    wait_until(lambda: _has(tmp_path, "task finished"), "the async task's end", server)

    events = [event.removesuffix(f" pid={server.pid}") for event in read_events(tmp_path)]
    assert len(events) == 6, events  # every event came from the uvicorn process
    task_thread = events[2].rpartition("thread=")[2]
    job_thread = events[4].rpartition("thread=")[2]
    assert events == [
        "task enqueued",
        "response closed",
        f"async task started thread={task_thread}",
        "response closed",
        f"async job ran ada thread={job_thread}",
        "task finished SUCCESSFUL 5",
    ]
    # Both on the event loop's one thread: an awaiting job holds no thread.
    assert task_thread == job_thread == "raincheck-loop"
