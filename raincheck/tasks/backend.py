"""raincheck as a backend for Django's Tasks framework.

``TASKS = {"default": {"BACKEND": "raincheck.backends.RaincheckBackend"}}``: a
task enqueued during a request runs after that request's response on the
raincheck pool; outside a request it is handed to the pool at once. A task
travels exactly like a ``.schedule()``\\d job (request buffer, then the pool), so
backpressure, the exit drain, ``stats()``, ``RAINCHECK_IMMEDIATE`` and
``capture()`` treat both alike.

``django.tasks`` is used on Django >= 6.0, the ``django-tasks`` backport before
that. raincheck itself never needs either: only importing this module does.
The public path of the backend is ``raincheck.backends.RaincheckBackend``.
"""

from __future__ import annotations

import inspect
import os
import socket
import threading
from collections.abc import Callable, Sequence
from contextvars import copy_context
from traceback import format_exception
from typing import Any, TypeVar

import django
from django.dispatch import Signal
from django.utils import timezone
from django.utils.crypto import get_random_string
from typing_extensions import ParamSpec

from raincheck import signals as raincheck_signals
from raincheck.scheduling import schedule
from raincheck.tasks.arguments import check_json_arguments
from raincheck.tasks.framework import (
    BaseTaskBackend,
    Task,
    TaskContext,
    TaskError,
    TaskResult,
    TaskResultDoesNotExist,
    TaskResultStatus,
    normalize_json,
    task_enqueued,
    task_finished,
    task_started,
)
from raincheck.tasks.results import ResultStore

__all__ = ["RaincheckBackend", "TaskDropped"]

P = ParamSpec("P")
R = TypeVar("R")


class TaskDropped(Exception):
    """Recorded as the error of a task whose job the backpressure policy dropped."""


class RaincheckBackend(BaseTaskBackend):
    """Run tasks after the response, on this process's raincheck pool."""

    supports_async_task = True
    # No run_after: a job runs as soon as its request has answered, never at a time.
    supports_defer = False
    # The pool runs jobs in the order they were handed off, whatever their priority.
    supports_priority = False
    # Results live in the memory of the process that enqueued the task, so another
    # process (another gunicorn worker, a later request served elsewhere) cannot
    # find them. get_result() does work within the process, for the most recent
    # RESULT_LIMIT finished results.
    supports_get_result = False

    def enqueue(
        self, task: Task[P, R], args: Sequence[Any], kwargs: dict[str, Any]
    ) -> TaskResult[P, R]:
        self.validate_task(task)
        check_json_arguments(
            task.module_path, task.func, args, kwargs, exact=False, skip=int(task.takes_context)
        )
        result = TaskResult(
            task=task,
            id=get_random_string(32),
            # django-stubs types the members of TaskResultStatus as "...".
            status=TaskResultStatus.READY,  # type: ignore[arg-type]
            enqueued_at=None,
            started_at=None,
            finished_at=None,
            last_attempted_at=None,
            args=list(args),
            kwargs=kwargs,
            backend=self.alias,
            errors=[],
            worker_ids=[],
        )
        object.__setattr__(result, "enqueued_at", timezone.now())
        _results.add(result)
        task_enqueued.send(type(self), task_result=result)

        schedule((TaskJob(task), (result, type(self)), {}, copy_context()))
        return result

    def get_result(self, result_id: str) -> TaskResult[Any, Any]:
        """A result enqueued by this process: unfinished, or among the last
        ``RESULT_LIMIT`` to finish; ``TaskResultDoesNotExist`` otherwise."""
        result = _results.get(result_id)
        if result is None or result.backend != self.alias:
            raise TaskResultDoesNotExist(result_id)
        return result

    async def aget_result(self, result_id: str) -> TaskResult[Any, Any]:
        return self.get_result(result_id)  # memory only: nothing to wait for


class TaskJob:
    """The raincheck job that runs one enqueued task (``jobs.JobFunction``)."""

    __slots__ = ("func", "is_async", "name")
    on_success = False
    routable = False  # already on a Tasks backend: this one

    def __init__(self, task: Task[Any, Any]) -> None:
        self.name: str = task.module_path
        self.is_async: bool = inspect.iscoroutinefunction(task.func)
        self.func: Callable[..., Any] = arun_task if self.is_async else run_task

    def __repr__(self) -> str:
        return f"<raincheck task {self.name}>"


def run_task(result: TaskResult[Any, Any], sender: type[BaseTaskBackend]) -> None:
    """Run a sync task, recording its outcome in ``result`` as it goes.

    A failure is recorded, then re-raised so that raincheck logs it, counts it in
    ``stats().failed`` and sends ``job_failed``, as for any job.
    """
    task = result.task
    _mark_running(result)
    task_started.send(sender, task_result=result)
    try:
        if task.takes_context:
            raw = task.func(TaskContext(task_result=result), *result.args, **result.kwargs)
        else:
            raw = task.func(*result.args, **result.kwargs)
        value = normalize_json(raw)
    except BaseException as exc:  # every exception fails the task, as it fails the job
        _mark_failed(result, exc)
        task_finished.send(sender, task_result=result)
        raise
    _mark_successful(result, value)
    task_finished.send(sender, task_result=result)


async def arun_task(result: TaskResult[Any, Any], sender: type[BaseTaskBackend]) -> None:
    """Await an async task on the worker's event loop; see ``run_task``."""
    task = result.task
    _mark_running(result)
    await _asend(task_started, sender, result)
    try:
        if task.takes_context:
            raw = await task.func(TaskContext(task_result=result), *result.args, **result.kwargs)
        else:
            raw = await task.func(*result.args, **result.kwargs)
        value = normalize_json(raw)
    except BaseException as exc:  # every exception fails the task, as it fails the job
        _mark_failed(result, exc)
        await _asend(task_finished, sender, result)
        raise
    _mark_successful(result, value)
    await _asend(task_finished, sender, result)


async def _asend(
    signal: Signal, sender: type[BaseTaskBackend], result: TaskResult[Any, Any]
) -> None:
    # send() would reach async receivers through async_to_sync, which refuses to
    # run inside this thread's event loop. Signal.asend is Django >= 5.0.
    if django.VERSION >= (5, 0):
        await signal.asend(sender, task_result=result)
    else:  # pragma: no cover - Django 4.2 with the backport
        signal.send(sender, task_result=result)


# Attributes are set with object.__setattr__ (TaskResult is frozen), each value
# before the status that announces it, so that a thread reading status sees the rest.


def _mark_running(result: TaskResult[Any, Any]) -> None:
    now = timezone.now()
    object.__setattr__(result, "started_at", now)
    object.__setattr__(result, "last_attempted_at", now)
    result.worker_ids.append(_worker_id())
    object.__setattr__(result, "status", TaskResultStatus.RUNNING)


def _mark_successful(result: TaskResult[Any, Any], value: Any) -> None:
    object.__setattr__(result, "_return_value", value)
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "status", TaskResultStatus.SUCCESSFUL)
    _results.finish(result)


def _mark_failed(result: TaskResult[Any, Any], exc: BaseException) -> None:
    kind = type(exc)
    error = TaskError(
        exception_class_path=f"{kind.__module__}.{kind.__qualname__}",
        traceback="".join(format_exception(exc)),
    )
    _record_failure(result, error)


def _record_failure(result: TaskResult[Any, Any], error: TaskError) -> None:
    result.errors.append(error)
    object.__setattr__(result, "finished_at", timezone.now())
    object.__setattr__(result, "status", TaskResultStatus.FAILED)
    _results.finish(result)


def _worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{threading.current_thread().name}"


def _task_dropped(sender: object, args: tuple[Any, ...], reason: str, **kwargs: Any) -> None:
    """A dropped task job never runs: fail its result rather than leave it READY."""
    if sender is not run_task and sender is not arun_task:
        return
    result, backend = args
    message = f"the raincheck queue was full (RAINCHECK_BACKPRESSURE = {reason!r})"
    error = TaskError(
        exception_class_path=f"{__name__}.{TaskDropped.__qualname__}",
        traceback=f"{__name__}.{TaskDropped.__qualname__}: {message}\n",
    )
    _record_failure(result, error)
    task_finished.send(backend, task_result=result)


raincheck_signals.job_dropped.connect(_task_dropped, dispatch_uid="raincheck.backends.dropped")


_results = ResultStore()


def _fresh_results_in_child() -> None:
    # A forked child runs none of its parent's jobs, so it has none of its results.
    global _results
    _results = ResultStore(_results.limit)


os.register_at_fork(after_in_child=_fresh_results_in_child)
