"""Routing for workers in other processes: Tasks made up front, where the routed
job is enqueued (RAINCHECK_TASKS_ENQUEUE), and ``enqueue()``'s TaskResult."""

from __future__ import annotations

import importlib
import sys
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils.module_loading import import_string
from pytest_django import Settings as SettingsWrapper

framework = pytest.importorskip(
    "raincheck.tasks.framework",
    reason="needs django.tasks (Django >= 6.0) or the django-tasks backport",
    exc_type=ImportError,
)

from raincheck import decorators  # noqa: E402
from raincheck.tasks import routing  # noqa: E402
from raincheck.tasks.framework import TaskResultStatus  # noqa: E402
from raincheck.tasks.handle import enqueue  # noqa: E402
from raincheck.testing import capture, wait_idle  # noqa: E402
from tests.tasks import jobs  # noqa: E402
from tests.tasks.registering import RegisteringBackend  # noqa: E402

GREET_TASK = "raincheck.tasks.routed.tests:tasks:jobs:greet"
LATE_TASK = "raincheck.tasks.routed.tests:tasks:late_jobs:late"


@pytest.fixture
def registering(settings: SettingsWrapper) -> Iterator[dict[str, Any]]:
    """Route to a backend that registers Tasks by name; undo the up-front hook after."""
    settings.TASKS = {
        **settings.TASKS,
        "registering": {"BACKEND": "tests.tasks.registering.RegisteringBackend"},
    }
    settings.RAINCHECK_TASKS_BACKEND = "registering"
    RegisteringBackend.registered.clear()
    yield RegisteringBackend.registered
    if routing.make_task_up_front in decorators.ON_DECORATE:
        decorators.ON_DECORATE.remove(routing.make_task_up_front)
    RegisteringBackend.registered.clear()


@pytest.fixture
def enqueue_threads() -> Iterator[list[str]]:
    """The name of the thread each ``task_enqueued`` is sent from, in order."""
    threads: list[str] = []

    def note(**kwargs: Any) -> None:
        threads.append(threading.current_thread().name)

    framework.task_enqueued.connect(note, weak=False)
    yield threads
    framework.task_enqueued.disconnect(note)


def test_ready_makes_the_task_of_every_decorated_function(
    registering: dict[str, Any],
) -> None:
    """Functions decorated before the app is ready have their Task made, and registered, then."""
    assert GREET_TASK not in registering
    routing.make_tasks_up_front(decorators.DECORATED, decorators.ON_DECORATE)
    assert GREET_TASK in registering
    # A worker's lookup by path gives the Task that was registered.
    assert import_string(GREET_TASK) is registering[GREET_TASK]


def test_functions_decorated_later_get_their_task_at_decoration(
    registering: dict[str, Any],
) -> None:
    """A module imported after ready(), as a worker imports tasks.py, registers its jobs' Tasks."""
    routing.make_tasks_up_front(decorators.DECORATED, decorators.ON_DECORATE)
    sys.modules.pop("tests.tasks.late_jobs", None)
    late_jobs = importlib.import_module("tests.tasks.late_jobs")
    assert LATE_TASK in registering
    assert not any("inner" in path for path in registering)  # left to .schedule() to refuse
    assert import_string(LATE_TASK) is registering[LATE_TASK]
    assert routing.routed_task(late_jobs.late.func, "registering") is registering[LATE_TASK]


def test_up_front_task_still_refuses_a_renamed_function(registering: dict[str, Any]) -> None:
    """A Task made up front does not spare .schedule() its check that a worker can find the job."""
    routing.make_tasks_up_front(decorators.DECORATED, decorators.ON_DECORATE)
    with pytest.raises(TypeError, match="cannot be found again by a worker"):
        jobs.renamed.schedule("x")


def test_request_finished_mode_enqueues_on_the_request_thread(
    settings: SettingsWrapper, enqueue_threads: list[str]
) -> None:
    """By default a routed job is in its backend when request_finished returns, enqueued there."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    Client().get("/schedule-routed/")
    assert enqueue_threads == [threading.current_thread().name]  # no wait: it is already there


def test_pool_mode_enqueues_on_a_pool_thread(
    settings: SettingsWrapper, enqueue_threads: list[str]
) -> None:
    """With RAINCHECK_TASKS_ENQUEUE = "pool" a pool thread enqueues the routed job."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    settings.RAINCHECK_TASKS_ENQUEUE = "pool"
    Client().get("/schedule-routed/")
    wait_idle()
    assert len(enqueue_threads) == 1
    assert enqueue_threads[0].startswith("raincheck-")


def test_request_finished_mode_enqueues_outside_a_request_before_schedule_returns(
    settings: SettingsWrapper, enqueue_threads: list[str]
) -> None:
    """Outside a request, .schedule() itself enqueues the routed job, on the calling thread."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    jobs.greet.schedule("ada")
    assert enqueue_threads == [threading.current_thread().name]


def test_enqueue_returns_the_task_result_of_a_routed_job(
    settings: SettingsWrapper, enqueue_threads: list[str]
) -> None:
    """enqueue() puts a routed job on its backend at once and returns the backend's TaskResult."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    result = enqueue(jobs.greet, "ada", punctuation="!")
    assert result is not None
    assert enqueue_threads == [threading.current_thread().name]
    assert result.task.module_path == GREET_TASK
    assert result.status == TaskResultStatus.READY
    assert result.args == ["ada"]
    assert result.kwargs == {"punctuation": "!"}


def test_view_gets_the_result_id_before_its_response(settings: SettingsWrapper) -> None:
    """A view can put the routed job's result id in its response; the job runs on the backend."""
    settings.RAINCHECK_TASKS_BACKEND = "second"
    response = Client().get("/enqueue-routed/")
    wait_idle()
    result = framework.task_backends["second"].get_result(response.json()["id"])
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "hello ada."


def test_enqueue_without_routing_schedules_and_returns_none(settings: SettingsWrapper) -> None:
    """Without RAINCHECK_TASKS_BACKEND, or inside capture(), enqueue() is .schedule() and None."""
    with capture() as captured:
        assert enqueue(jobs.greet, "ada") is None
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with capture() as routed_captured:
        assert enqueue(jobs.greet, "grace") is None
    assert [job[1] for job in (*captured, *routed_captured)] == [("ada",), ("grace",)]


def test_enqueue_checks_arguments_like_schedule(
    settings: SettingsWrapper, enqueue_threads: list[str]
) -> None:
    """enqueue() refuses an argument JSON cannot carry, naming it, before anything is enqueued."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with pytest.raises(TypeError, match="punctuation"):
        enqueue(jobs.greet, "ada", punctuation=object())  # type: ignore[arg-type]
    assert enqueue_threads == []


def test_enqueue_refuses_on_commit_functions(settings: SettingsWrapper) -> None:
    """An on_commit=True job is refused: enqueue() would enqueue it before the commit."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with pytest.raises(TypeError, match="on_commit"):
        enqueue(jobs.greet_on_commit, "ada")
