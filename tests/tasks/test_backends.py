"""``RaincheckBackend``: Django Tasks run after the response, on the raincheck pool."""

from __future__ import annotations

import logging
import threading
from datetime import timedelta
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.test import AsyncClient, Client, override_settings
from django.utils import timezone
from pytest_django import Settings as SettingsWrapper

framework = pytest.importorskip(
    "raincheck.tasks.framework",
    reason="needs django.tasks (Django >= 6.0) or the django-tasks backport",
    exc_type=ImportError,
)

import raincheck  # noqa: E402
from raincheck import signals as raincheck_signals  # noqa: E402
from raincheck.backends import RaincheckBackend, TaskDropped  # noqa: E402
from raincheck.tasks import backend, results  # noqa: E402
from raincheck.tasks.framework import (  # noqa: E402
    InvalidTask,
    TaskResultDoesNotExist,
    TaskResultStatus,
    task_backends,
)
from raincheck.testing import capture, wait_idle  # noqa: E402
from tests.app import jobs  # noqa: E402
from tests.app.helpers import fails_with_async_client_before_django_6_1  # noqa: E402
from tests.tasks import tasks, views  # noqa: E402

SUCCESSFUL = TaskResultStatus.SUCCESSFUL
FAILED = TaskResultStatus.FAILED
READY = TaskResultStatus.READY


@pytest.fixture
def task_signals(received: Any) -> dict[str, list[dict[str, Any]]]:
    """What ``task_enqueued``, ``task_started`` and ``task_finished`` were sent with."""
    return {
        "enqueued": received(framework.task_enqueued),
        "started": received(framework.task_started),
        "finished": received(framework.task_finished),
    }


def test_task_enqueued_in_a_view_runs_after_its_response() -> None:
    """A task enqueued in a view runs once the response is complete, on a pool thread."""
    response = Client().get("/enqueue/")
    assert response.status_code == 200
    wait_idle()
    assert jobs.values() == ["view returned", "response closed", "add"]
    ran_on = next(kind for kind, value in jobs.calls if value == "add")
    assert ran_on.startswith("raincheck-")


def test_result_ends_successful_with_the_return_value() -> None:
    """The TaskResult the view got back ends SUCCESSFUL, with the task's return value."""
    Client().get("/enqueue/")
    wait_idle()
    (result,) = views.results
    assert result.status == SUCCESSFUL
    assert result.return_value == 5
    assert result.errors == []
    assert result.is_finished


def test_result_ends_failed_with_the_traceback(caplog: pytest.LogCaptureFixture) -> None:
    """A task that raises leaves its TaskResult FAILED with the exception's class and traceback."""
    with caplog.at_level(logging.ERROR, logger="raincheck"):
        Client().get("/enqueue-failing/")
        wait_idle()
    (result,) = views.results
    assert result.status == FAILED
    (error,) = result.errors
    assert error.exception_class is ValueError
    assert "broken on purpose" in error.traceback
    assert "Traceback (most recent call last)" in error.traceback
    assert "in fail\n    raise ValueError(message)" in error.traceback
    with pytest.raises(ValueError, match="Task failed"):
        result.return_value  # noqa: B018


def test_failed_task_counts_logs_and_signals_as_a_failed_job(
    caplog: pytest.LogCaptureFixture, received: Any
) -> None:
    """A failing task is a failing raincheck job: counted, logged with its name, job_failed sent."""
    failed = received(raincheck_signals.job_failed)
    with caplog.at_level(logging.ERROR, logger="raincheck"):
        tasks.fail.enqueue("counted")
        wait_idle()
    assert raincheck.stats().failed == 1
    assert raincheck.stats().succeeded == 0
    (sent,) = failed
    assert isinstance(sent["exception"], ValueError)
    assert any(
        r.name == "raincheck" and "tests.tasks.tasks.fail" in r.getMessage() for r in caplog.records
    )


def test_result_is_updated_in_place_through_every_state() -> None:
    """One TaskResult object goes READY (enqueued) -> RUNNING (seen by the task) -> SUCCESSFUL."""
    before = timezone.now()
    with capture() as captured:
        result = tasks.with_context.enqueue("x")
    assert result.status == READY
    assert result.enqueued_at is not None
    assert result.enqueued_at >= before
    assert result.started_at is None
    assert result.finished_at is None
    assert result.worker_ids == []
    captured.run()
    assert result.status == SUCCESSFUL
    assert result.return_value == {
        "value": "x",
        "id": result.id,
        "status": "RUNNING",
        "attempt": 1,
        "started": True,
    }
    assert result.started_at is not None
    assert result.finished_at is not None
    assert result.enqueued_at <= result.started_at <= result.finished_at
    assert result.last_attempted_at == result.started_at
    assert len(result.worker_ids) == 1
    assert result.attempts == 1


def test_signals_are_sent_once_each_in_order(
    task_signals: dict[str, list[dict[str, Any]]],
) -> None:
    """task_enqueued in the view, then task_started and task_finished on the pool, once each."""
    Client().get("/enqueue/")
    wait_idle()
    (result,) = views.results
    for name in ("enqueued", "started", "finished"):
        (sent,) = task_signals[name]
        assert sent["sender"] is RaincheckBackend
        assert sent["task_result"] is result


def test_enqueued_signal_is_sent_during_the_view(received: Any) -> None:
    """task_enqueued is sent at enqueue(), before the response; task_started after it."""

    def mark(name: str) -> Any:
        def receiver(**kwargs: Any) -> None:
            jobs.record("signal", name)

        return receiver

    enqueued, started = mark("task_enqueued"), mark("task_started")
    framework.task_enqueued.connect(enqueued)
    framework.task_started.connect(started)
    try:
        Client().get("/enqueue/")
        wait_idle()
    finally:
        framework.task_enqueued.disconnect(enqueued)
        framework.task_started.disconnect(started)
    assert jobs.values() == [
        "task_enqueued",
        "view returned",
        "response closed",
        "task_started",
        "add",
    ]


def test_failed_task_sends_task_finished_with_failed_status(
    task_signals: dict[str, list[dict[str, Any]]],
) -> None:
    """task_finished is sent once for a failing task too, with the FAILED result."""
    result = tasks.fail.enqueue("signalled")
    wait_idle()
    (sent,) = task_signals["finished"]
    assert sent["task_result"] is result
    assert result.status == FAILED
    assert len(task_signals["started"]) == 1


def test_async_task_is_awaited_on_the_pool() -> None:
    """An async task runs to completion on a pool thread and records its return value."""
    result = tasks.add_async.enqueue(1, 2)
    wait_idle()
    assert result.status == SUCCESSFUL
    value: Any = result.return_value  # typed as the coroutine by django-stubs
    assert value == 3
    ((ran_on, recorded),) = jobs.calls
    assert recorded == "add_async"
    assert ran_on.startswith("raincheck-")


def test_async_task_failure_is_recorded() -> None:
    """An async task that raises leaves its result FAILED with the traceback."""
    result = tasks.fail_async.enqueue("async broken")
    wait_idle()
    assert result.status == FAILED
    assert "async broken" in result.errors[0].traceback


@fails_with_async_client_before_django_6_1
def test_aenqueue_from_an_async_view_runs_after_the_response(
    task_signals: dict[str, list[dict[str, Any]]],
) -> None:
    """``await task.aenqueue()`` in an async view: the task runs after that view's response."""
    response = async_to_sync(AsyncClient().get)("/aenqueue/")
    assert response.status_code == 200
    wait_idle()
    assert jobs.values() == ["view returned", "response closed", "add_async"]
    (result,) = views.results
    assert result.status == SUCCESSFUL
    assert result.return_value == 9
    assert [len(task_signals[name]) for name in ("enqueued", "started", "finished")] == [1, 1, 1]


def test_enqueue_outside_a_request_runs_at_once_on_the_pool() -> None:
    """Outside a request, enqueue() hands the task to the pool at once."""
    result = tasks.add.enqueue(20, 22)
    wait_idle()
    assert result.return_value == 42
    assert jobs.calls[0][0].startswith("raincheck-")


def test_takes_context_passes_the_live_result() -> None:
    """A ``takes_context`` task gets a TaskContext holding its own, running, result."""
    result = tasks.with_context.enqueue("y")
    wait_idle()
    assert result.return_value["id"] == result.id
    assert result.return_value["status"] == "RUNNING"
    assert result.return_value["attempt"] == 1


def test_non_json_return_value_fails_the_task() -> None:
    """As with Django's own backends, a return value JSON cannot carry fails the task."""
    result = tasks.unserialisable.enqueue()
    wait_idle()
    assert result.status == FAILED
    assert "Unsupported type" in result.errors[0].traceback


# Validation, as Django's built-in backends do it


def test_non_json_positional_argument_is_rejected_by_name() -> None:
    """A positional argument that JSON cannot carry fails enqueue(), naming it."""
    with pytest.raises(TypeError) as info:
        tasks.add.enqueue(1, timezone.now())  # type: ignore[arg-type]
    message = str(info.value)
    assert "tests.tasks.tasks.add" in message
    assert "argument 1 ('b')" in message
    assert "datetime" in message
    assert jobs.calls == []


def test_non_json_keyword_argument_is_rejected_by_name() -> None:
    """A keyword argument that JSON cannot carry fails enqueue(), naming it."""
    with pytest.raises(TypeError, match=r"argument 'b' .*object"):
        tasks.add.enqueue(1, b=object())  # type: ignore[arg-type]


def test_context_task_names_the_right_parameter() -> None:
    """With takes_context, argument 0 is the parameter after ``context``."""
    with pytest.raises(TypeError, match=r"argument 0 \('value'\)"):
        tasks.with_context.enqueue({1, 2})  # type: ignore[arg-type]


def test_arguments_are_normalised_like_djangos_backends() -> None:
    """Tuples arrive as lists, as with Django's built-in backends."""
    result = tasks.with_context.enqueue(("a", "b"))  # type: ignore[arg-type]
    assert result.args == [["a", "b"]]
    wait_idle()
    assert result.return_value["value"] == ["a", "b"]


def test_nested_function_is_rejected() -> None:
    """A task function not at module level is refused when the Task is made."""

    def nested() -> None:
        pass

    with pytest.raises(InvalidTask, match="module level"):
        framework.task(nested)


def test_unknown_queue_is_rejected() -> None:
    """A queue the backend does not list is refused."""
    with pytest.raises(InvalidTask, match="Queue 'emails'"):
        tasks.add.using(queue_name="emails")
    on_second = tasks.add.using(queue_name="emails", backend="second")
    assert on_second.enqueue(1, 1).backend == "second"
    wait_idle()


def test_priority_is_refused_truthfully() -> None:
    """The pool ignores priorities, so the backend refuses them."""
    with pytest.raises(InvalidTask, match="priority"):
        tasks.add.using(priority=10)


def test_run_after_is_refused_truthfully() -> None:
    """raincheck runs jobs after the response, not at a time: run_after is refused."""
    with pytest.raises(InvalidTask, match="run_after"):
        tasks.add.using(run_after=timezone.now() + timedelta(minutes=1))


def test_capability_flags() -> None:
    """The flags say what the backend does: async yes; defer, priority, get_result no."""
    backend = task_backends["default"]
    assert isinstance(backend, RaincheckBackend)
    assert backend.supports_async_task is True
    assert backend.supports_defer is False
    assert backend.supports_priority is False
    assert backend.supports_get_result is False


# raincheck's own switches and limits


def test_immediate_runs_the_task_in_the_caller(settings: SettingsWrapper) -> None:
    """RAINCHECK_IMMEDIATE: enqueue() returns a finished result, run in this thread."""
    settings.RAINCHECK_IMMEDIATE = True
    result = tasks.add.enqueue(3, 4)
    assert result.status == SUCCESSFUL
    assert result.return_value == 7
    assert jobs.calls == [(threading.current_thread().name, "add")]


def test_immediate_propagates_a_failure(settings: SettingsWrapper) -> None:
    """RAINCHECK_IMMEDIATE lets a task's exception propagate, as it does for jobs."""
    settings.RAINCHECK_IMMEDIATE = True
    with pytest.raises(ValueError, match="immediate"):
        tasks.fail.enqueue("immediate")


def test_capture_records_the_task_without_running_it() -> None:
    """Under capture() a task is recorded as a job named after the task, and not run."""
    with capture() as captured:
        result = tasks.add.enqueue(1, 2)
    assert [fn.name for fn, _, _ in captured] == ["tests.tasks.tasks.add"]
    assert result.status == READY
    assert jobs.calls == []


def test_dropped_task_fails_its_result(settings: SettingsWrapper) -> None:
    """A task dropped by the ``drop`` policy is FAILED with TaskDropped, not left READY."""
    settings.RAINCHECK_MAX_WORKERS = 1
    settings.RAINCHECK_MAX_QUEUE = 1
    settings.RAINCHECK_BACKPRESSURE = "drop"
    gate = jobs.Gate()
    jobs.held.schedule(gate, "held")
    assert gate.started.wait(5)
    queued = tasks.add.enqueue(1, 1)
    dropped = tasks.add.enqueue(2, 2)
    assert dropped.status == FAILED
    assert dropped.errors[0].exception_class is TaskDropped
    assert "'drop'" in dropped.errors[0].traceback
    assert queued.status == READY
    gate.release.set()
    wait_idle()
    assert queued.status == SUCCESSFUL
    assert raincheck.stats().dropped == 1


def test_run_async_false_runs_after_the_response_in_the_request_thread(
    settings: SettingsWrapper,
) -> None:
    """RAINCHECK_RUN_ASYNC = False: the task runs after the response, in the request's thread."""
    settings.RAINCHECK_RUN_ASYNC = False
    Client().get("/enqueue/")
    assert jobs.values() == ["view returned", "response closed", "add"]
    assert views.results[0].status == SUCCESSFUL


# get_result


def test_get_result_finds_the_same_live_result() -> None:
    """get_result() in the same process returns the very TaskResult enqueue() returned."""
    result = tasks.add.enqueue(1, 2)
    assert tasks.add.get_result(result.id) is result
    wait_idle()
    assert tasks.add.get_result(result.id).return_value == 3
    result.refresh()
    assert result.status == SUCCESSFUL


def test_get_result_from_another_thread() -> None:
    """Any thread of the process finds a result (each thread has its own backend object)."""
    result = tasks.add.enqueue(1, 2)
    wait_idle()
    found: list[Any] = []
    thread = threading.Thread(target=lambda: found.append(tasks.add.get_result(result.id)))
    thread.start()
    thread.join()
    assert found == [result]


def test_aget_result() -> None:
    """aget_result() finds a result like get_result()."""
    result = tasks.add.enqueue(1, 2)
    wait_idle()
    assert async_to_sync(tasks.add.aget_result)(result.id) is result


def test_get_result_of_unknown_id_raises() -> None:
    """An id this process never enqueued is TaskResultDoesNotExist."""
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result("nope")


def test_get_result_of_another_alias_raises() -> None:
    """A result belongs to its backend alias; another alias does not find it."""
    result = tasks.add.enqueue(1, 2)
    wait_idle()
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["second"].get_result(result.id)


@override_settings(RAINCHECK_MAX_WORKERS=1)  # one worker: the tasks finish in order
def test_old_finished_results_are_forgotten(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the most recent RESULT_LIMIT finished results are kept; unfinished ones always."""
    monkeypatch.setattr(backend._results, "limit", 2)
    with capture() as captured:
        pending = tasks.add.enqueue(0, 0)
    finished = [tasks.add.enqueue(i, i) for i in range(3)]
    wait_idle()
    assert all(r.status == SUCCESSFUL for r in finished)
    with pytest.raises(TaskResultDoesNotExist):
        task_backends["default"].get_result(finished[0].id)
    assert task_backends["default"].get_result(finished[1].id) is finished[1]
    assert task_backends["default"].get_result(finished[2].id) is finished[2]
    assert task_backends["default"].get_result(pending.id) is pending
    assert len(captured) == 1
    assert results.RESULT_LIMIT == 1_000


@pytest.mark.parametrize("interrupting", ["interrupt", "interrupt_async"])
def test_a_task_raising_keyboard_interrupt_on_the_pool_ends_failed(
    interrupting: str, caplog: pytest.LogCaptureFixture, received: Any
) -> None:
    """A BaseException from a task fails it like any other: FAILED, finished, logged."""
    finished = received(framework.task_finished)
    result = getattr(tasks, interrupting).enqueue()
    wait_idle()
    assert result.status == FAILED
    assert result.finished_at is not None
    assert result.errors[0].exception_class_path == "builtins.KeyboardInterrupt"
    assert [sent["task_result"] for sent in finished] == [result]
    assert f"raincheck job tests.tasks.tasks.{interrupting} failed" in caplog.text
    stats = raincheck.stats()
    assert (stats.scheduled, stats.failed) == (1, 1)


@pytest.mark.parametrize("adding", ["add", "add_async"])
def test_immediate_aenqueue_under_async_to_sync(settings: SettingsWrapper, adding: str) -> None:
    """RAINCHECK_IMMEDIATE: ``await task.aenqueue()`` works where Django runs async tests."""
    settings.RAINCHECK_IMMEDIATE = True

    async def enqueue() -> Any:
        return await getattr(tasks, adding).aenqueue(2, 3)

    result = async_to_sync(enqueue)()
    assert result.status == SUCCESSFUL
    assert result.return_value == 5


def test_immediate_aenqueue_in_an_async_view_through_the_sync_client(
    settings: SettingsWrapper,
) -> None:
    """RAINCHECK_IMMEDIATE: an async view's ``await task.aenqueue()`` runs the task in place."""
    settings.RAINCHECK_IMMEDIATE = True
    response = Client().get("/aenqueue/")
    assert response.status_code == 200
    (result,) = views.results
    assert result.status == SUCCESSFUL
    assert result.return_value == 9
