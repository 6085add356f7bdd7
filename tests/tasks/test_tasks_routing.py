"""RAINCHECK_TASKS_BACKEND: ``.schedule()`` enqueues on a Tasks backend after the response."""

from __future__ import annotations

import copy
import inspect
import math
import sys
from collections.abc import Iterator
from contextvars import copy_context
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.core.exceptions import ImproperlyConfigured
from django.test import AsyncClient, Client
from django.utils import timezone
from django.utils.module_loading import import_string
from pytest_django import Settings as SettingsWrapper

framework = pytest.importorskip(
    "raincheck.tasks.framework",
    reason="needs django.tasks (Django >= 6.0) or the django-tasks backport",
    exc_type=ImportError,
)

from raincheck.checks import check_tasks_backend  # noqa: E402
from raincheck.tasks import routed as routed_namespace  # noqa: E402
from raincheck.tasks.framework import InvalidTask, Task, TaskResultStatus  # noqa: E402
from raincheck.tasks.routing import (  # noqa: E402
    RoutedFunction,
    routed,
    routed_task,
)
from raincheck.testing import capture, wait_idle  # noqa: E402
from tests.app.helpers import fails_with_async_client_before_django_6_1  # noqa: E402
from tests.app.jobs import record, values  # noqa: E402
from tests.tasks import jobs  # noqa: E402

GREET_TASK = "raincheck.tasks.routed.tests:tasks:jobs:greet"


@pytest.fixture
def enqueued(received: Any) -> Iterator[list[dict[str, Any]]]:
    """Each ``task_enqueued`` send; also recorded as the event ``task enqueued``."""
    sent: list[dict[str, Any]] = received(framework.task_enqueued)

    def mark(**kwargs: Any) -> None:
        record("signal", "task enqueued")

    framework.task_enqueued.connect(mark, weak=False)
    yield sent
    framework.task_enqueued.disconnect(mark)


@pytest.fixture
def finished(received: Any) -> list[dict[str, Any]]:
    """Each ``task_finished`` send."""
    sent: list[dict[str, Any]] = received(framework.task_finished)
    return sent


def test_schedule_in_a_view_enqueues_on_the_backend_after_the_response(
    settings: SettingsWrapper, enqueued: list[dict[str, Any]]
) -> None:
    """The job is enqueued on the configured backend once the response is complete, not before."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    Client().get("/schedule-routed/")
    wait_idle()
    assert values() == ["view returned", "response closed", "task enqueued"]
    (sent,) = enqueued
    result = sent["task_result"]
    assert result.backend == "dummy"
    assert result.task.module_path == GREET_TASK
    assert result.args == ["ada"]
    assert result.kwargs == {"punctuation": "!"}
    assert result.status == TaskResultStatus.READY  # the dummy backend never runs it


def test_routed_job_runs_through_the_backend(
    settings: SettingsWrapper, finished: list[dict[str, Any]]
) -> None:
    """Routed to a backend that runs tasks, the function runs there and its result is recorded."""
    settings.RAINCHECK_TASKS_BACKEND = "second"
    Client().get("/schedule-routed/")
    wait_idle()
    assert values() == ["view returned", "response closed", "hello ada!"]
    (sent,) = finished
    result = sent["task_result"]
    assert result.backend == "second"
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "hello ada!"


@fails_with_async_client_before_django_6_1
def test_async_job_from_an_async_view_runs_as_an_async_task(
    settings: SettingsWrapper, finished: list[dict[str, Any]]
) -> None:
    """An async job scheduled in an async view becomes an async task, run after the response."""
    settings.RAINCHECK_TASKS_BACKEND = "second"
    async_to_sync(AsyncClient().get)("/schedule-routed-async/")
    wait_idle()
    assert values() == ["view returned", "response closed", "hello grace"]
    (sent,) = finished
    assert sent["task_result"].return_value == "hello grace"


def test_async_job_is_an_async_task(
    settings: SettingsWrapper, finished: list[dict[str, Any]]
) -> None:
    """A routed ``async def`` job is an async Task, awaited by the backend."""
    settings.RAINCHECK_TASKS_BACKEND = "second"
    jobs.greet_async.schedule("lin")
    wait_idle()
    (sent,) = finished
    result = sent["task_result"]
    assert inspect.iscoroutinefunction(result.task.func)
    assert result.status == TaskResultStatus.SUCCESSFUL
    assert result.return_value == "hello lin"


def test_jobs_of_a_failed_request_keep_their_options(
    settings: SettingsWrapper, enqueued: list[dict[str, Any]]
) -> None:
    """on_success still applies: a failed request's on_success job is never enqueued."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    Client(raise_request_exception=False).get("/schedule-then-fail/")
    wait_idle()
    assert [sent["task_result"].args for sent in enqueued] == [["kept"]]


def test_replacement_job_has_the_job_shape() -> None:
    """The buffered replacement is ``(fn, args, kwargs)`` with the original's name and options."""
    fn, args, kwargs, _ = routed((jobs.greet_on_success, ("x",), {}, copy_context()), "dummy")
    assert isinstance(fn, RoutedFunction)
    assert fn.name == "tests.tasks.jobs.greet_on_success"
    assert fn.is_async is False
    assert fn.on_success is True
    assert (args, kwargs) == (("x",), {})
    assert fn.task.backend == "dummy"
    assert fn.task.module_path == "raincheck.tasks.routed.tests:tasks:jobs:greet_on_success"


def test_capture_still_sees_the_original_job(settings: SettingsWrapper) -> None:
    """capture() records the job as scheduled, before any routing."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with capture() as captured:
        jobs.greet.schedule("cap")
    captured.assert_scheduled(jobs.greet, "cap")


# What the backend cannot take fails at .schedule()


def test_nested_function_fails_at_schedule(settings: SettingsWrapper) -> None:
    """A function defined inside another fails at schedule(), named."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with pytest.raises(TypeError, match=r"_not_at_module_level\.<locals>\.nested is not a module"):
        jobs.nested.schedule("x")


def test_function_under_another_name_fails_at_schedule(settings: SettingsWrapper) -> None:
    """A function whose dotted path does not lead back to its @raincheck object fails, named."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with pytest.raises(TypeError, match=r"tests\.tasks\.jobs\._plain cannot be found again"):
        jobs.renamed.schedule("x")


def test_non_json_positional_argument_fails_at_schedule(settings: SettingsWrapper) -> None:
    """A positional argument JSON cannot carry fails at schedule(), naming function and argument."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with pytest.raises(TypeError) as info:
        jobs.greet.schedule(timezone.now())  # type: ignore[arg-type]
    message = str(info.value)
    assert message.startswith("tests.tasks.jobs.greet: argument 0 ('name')")
    assert "datetime" in message
    assert "RAINCHECK_TASKS_BACKEND = 'dummy'" in message


def test_non_json_keyword_argument_fails_at_schedule(settings: SettingsWrapper) -> None:
    """A keyword argument JSON cannot carry fails at schedule(), naming it."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with pytest.raises(TypeError, match=r"tests\.tasks\.jobs\.greet: argument 'punctuation'"):
        jobs.greet.schedule("ada", punctuation=object())  # type: ignore[arg-type]


def test_non_json_argument_fails_in_the_view(
    settings: SettingsWrapper, enqueued: list[dict[str, Any]]
) -> None:
    """The error is raised in the view that scheduled the job, and nothing is enqueued."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with pytest.raises(TypeError, match="argument 'punctuation'"):
        Client().get("/schedule-unserialisable/")
    wait_idle()
    assert enqueued == []


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({1: "one"}, r"would arrive as \{'1': 'one'\}"),
        (math.nan, "Out of range float"),
        (b"\xff", "Unsupported value"),
        ({"when": {"at": timezone.now()}}, "Unsupported type"),
    ],
)
def test_arguments_that_change_in_a_json_round_trip_fail(
    settings: SettingsWrapper, value: Any, problem: str
) -> None:
    """Values a JSON store would change or refuse fail at schedule(), saying why."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    with pytest.raises(TypeError, match=problem):
        jobs.takes_anything.schedule(value)


def test_tuples_are_accepted_as_lists(
    settings: SettingsWrapper, enqueued: list[dict[str, Any]]
) -> None:
    """A tuple is accepted and arrives as a list, as with Django's own backends."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    jobs.takes_anything.schedule((1, 2), key=("a",))
    wait_idle()
    (sent,) = enqueued
    assert sent["task_result"].args == [[1, 2]]
    assert sent["task_result"].kwargs == {"key": ["a"]}


def test_task_the_backend_refuses_fails_at_schedule(settings: SettingsWrapper) -> None:
    """A backend that cannot take the task (no 'default' queue here) refuses it at schedule()."""
    settings.RAINCHECK_TASKS_BACKEND = "emails_only"
    with pytest.raises(InvalidTask, match=r"tests\.tasks\.jobs\.greet cannot be sent .*Queue"):
        jobs.greet.schedule("x")


def test_unknown_alias_fails_at_schedule(settings: SettingsWrapper) -> None:
    """An alias missing from TASKS fails at schedule() with ImproperlyConfigured."""
    settings.RAINCHECK_TASKS_BACKEND = "missing"
    with pytest.raises(ImproperlyConfigured, match="'missing' is not a backend in TASKS"):
        jobs.greet.schedule("x")


# How a worker in another process finds the task


def test_task_path_imports_the_task() -> None:
    """Importing a routed task's path, as a worker does, gives the Task that runs the job."""
    task = import_string(GREET_TASK)
    assert isinstance(task, Task)
    assert task.call("bob") == "hello bob."
    assert values() == ["hello bob."]


def test_stored_task_path_scheme_is_stable() -> None:
    """The path a durable backend stores for a routed job is part of the public API.

    Written literally, not built from raincheck's constants: a release that
    changes the scheme would strand every job queued by the one before it.
    """
    stored_by_0_1 = "raincheck.tasks.routed.tests:tasks:jobs:greet"
    assert routed_task(jobs.greet.func, "default").module_path == stored_by_0_1
    task = import_string(stored_by_0_1)
    assert isinstance(task, Task)
    assert task.func(name="ann") == "hello ann."


def test_task_survives_a_deep_copy() -> None:
    """A routed Task can be copied (Django's dummy backend deep-copies results)."""
    task = routed_task(jobs.greet.func, "dummy")
    assert copy.deepcopy(task).func is task.func


def test_task_path_only_names_raincheck_functions() -> None:
    """The module answers only for @raincheck functions, not any importable callable."""
    with pytest.raises(ImportError):
        import_string("raincheck.tasks.routed.os:path:join")
    with pytest.raises(ImportError):
        import_string("raincheck.tasks.routed.tests:tasks:jobs:_plain")
    with pytest.raises(AttributeError):
        routed_namespace.no_such_thing  # noqa: B018


def test_non_json_return_value_is_dropped() -> None:
    """raincheck ignores return values: one JSON cannot carry becomes None, not a failed task."""
    task = import_string("raincheck.tasks.routed.tests:tasks:jobs:returns_object")
    assert task.call() is None
    assert values() == ["returned an object"]


def test_tasks_are_made_once_per_function_and_alias(settings: SettingsWrapper) -> None:
    """The Task is cached per function and alias, and made again when TASKS changes."""
    first = routed_task(jobs.greet.func, "dummy")
    assert routed_task(jobs.greet.func, "dummy") is first
    assert routed_task(jobs.greet.func, "second") is not first
    settings.TASKS = {**settings.TASKS, "third": {"BACKEND": "raincheck.backends.RaincheckBackend"}}
    again = routed_task(jobs.greet.func, "dummy")
    assert again is not first
    assert again.func is first.func


# System check


def test_check_passes_without_routing() -> None:
    """No RAINCHECK_TASKS_BACKEND, nothing to check."""
    assert check_tasks_backend() == []


def test_check_passes_for_a_configured_alias(settings: SettingsWrapper) -> None:
    """An alias present in TASKS passes."""
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    assert check_tasks_backend() == []


def test_check_e011_for_an_unknown_alias(settings: SettingsWrapper) -> None:
    """raincheck.E011: the alias is not in TASKS."""
    settings.RAINCHECK_TASKS_BACKEND = "missing"
    (error,) = check_tasks_backend()
    assert error.id == "raincheck.E011"
    assert "'missing'" in error.msg
    assert "'dummy'" in error.msg


def test_check_leaves_an_invalid_value_to_e009(settings: SettingsWrapper) -> None:
    """A value of the wrong type is E009's to report, not this check's."""
    settings.RAINCHECK_TASKS_BACKEND = 5
    assert check_tasks_backend() == []


def test_check_e012_without_a_tasks_framework(
    settings: SettingsWrapper, monkeypatch: pytest.MonkeyPatch
) -> None:
    """raincheck.E012: routing is set but neither django.tasks nor the backport can be imported."""
    import raincheck.tasks

    monkeypatch.delattr(raincheck.tasks, "framework")
    monkeypatch.setitem(sys.modules, "raincheck.tasks.framework", None)
    settings.RAINCHECK_TASKS_BACKEND = "dummy"
    (error,) = check_tasks_backend()
    assert error.id == "raincheck.E012"
