"""RAINCHECK_TASKS_BACKEND: send ``@raincheck`` jobs to a Django Tasks backend.

With ``RAINCHECK_TASKS_BACKEND = "durable"``, ``.schedule()`` checks at once that
the ``durable`` backend can take the job (a module-level function, arguments
that survive JSON), then buffers in its place a job that enqueues it there once
the response has been sent.

On the backend the function runs as a Task whose path is in
``raincheck.tasks.routed`` (see that module for the stable scheme): the
function's own path holds the ``@raincheck`` function, not a Task, and a worker
in another process finds a Task by its path.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final, TypeGuard

from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from raincheck import conf
from raincheck.jobs import Job, JobFunction
from raincheck.tasks.arguments import check_json_arguments, json_problem
from raincheck.tasks.framework import (
    DEFAULT_TASK_BACKEND_ALIAS,
    InvalidTask,
    InvalidTaskBackend,
    is_module_level_function,
    task,
)

if TYPE_CHECKING:
    from raincheck.tasks.framework import Task

# The module that answers routed Tasks' paths. Stored by durable backends: never rename.
NAMESPACE: Final = "raincheck.tasks.routed"

_tasks: dict[tuple[Callable[..., Any], str], Task[Any, Any]] = {}
_runners: dict[Callable[..., Any], Callable[..., Any]] = {}
_lock = threading.Lock()


class RoutedFunction:
    """Stands for a ``@raincheck`` function in its request's buffer: running it
    enqueues the original on the Tasks backend."""

    __slots__ = ("func", "name", "on_success", "task")
    is_async = False
    routable = False  # it already is

    def __init__(self, fn: JobFunction, task: Task[Any, Any]) -> None:
        self.task = task
        self.name = fn.name
        self.on_success = fn.on_success
        self.func: Callable[..., Any] = task.enqueue

    def __repr__(self) -> str:
        return f"<raincheck {self.name} via Tasks backend {self.task.backend!r}>"


def routed(job: Job, alias: str) -> Job:
    """The job that enqueues ``job`` on the ``alias`` Tasks backend.

    Raises now, naming the function and the argument, if that backend could not
    take it: so a mistake shows in the view that made it, not later in a worker.
    """
    fn, args, kwargs = job
    found = routed_task(fn.func, alias)
    try:
        check_json_arguments(fn.name, fn.func, args, kwargs, exact=True)
    except TypeError as exc:
        raise TypeError(
            f"{exc} RAINCHECK_TASKS_BACKEND = {alias!r} sends it to a Tasks backend, "
            "which stores arguments as JSON."
        ) from None
    return (RoutedFunction(fn, found), args, kwargs)


def routed_task(func: Callable[..., Any], alias: str) -> Task[Any, Any]:
    """The Task that runs ``func`` on the ``alias`` backend (one per function and alias)."""
    key = (func, alias)
    found = _tasks.get(key)
    if found is not None:
        return found
    name = _dotted(func)
    runner = _runner(func, _path_name(func))
    try:
        found = task(runner, backend=alias)
    except InvalidTaskBackend as exc:
        raise ImproperlyConfigured(
            f"RAINCHECK_TASKS_BACKEND = {alias!r} is not a backend in TASKS ({exc})"
        ) from exc
    except InvalidTask as exc:
        raise InvalidTask(f"{name} cannot be sent to Tasks backend {alias!r}: {exc}") from exc
    with _lock:
        return _tasks.setdefault(key, found)


def _dotted(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _is_raincheck_function(value: object) -> TypeGuard[JobFunction]:
    # Not an isinstance() check: raincheck.decorators sits upstream of this module.
    return getattr(value, "routable", False) is True and callable(getattr(value, "func", None))


def _path_name(func: Callable[..., Any]) -> str:
    """The name of ``func``'s Task in ``NAMESPACE``; TypeError if a worker
    could not import ``func`` again."""
    name = _dotted(func)
    reason = "a Tasks backend's worker imports the function by its dotted path"
    if not is_module_level_function(func):
        raise TypeError(f"{name} is not a module-level function: {reason}.")
    module, qualname = func.__module__, func.__qualname__
    if module == "__main__":
        raise TypeError(f"{name} is defined in __main__: {reason}, and __main__ is not importable.")
    if "." in qualname:
        raise TypeError(f"{name} is defined inside {qualname.rpartition('.')[0]}: {reason}.")
    found = getattr(sys.modules.get(module), qualname, None)
    if not (_is_raincheck_function(found) and found.func is func):
        raise TypeError(
            f"{name} cannot be found again by a worker: {module}.{qualname} is {found!r}, "
            "not its @raincheck function; decorate the function where it is defined, "
            "under its own name."
        )
    return module.replace(".", ":") + ":" + qualname


def _runner(func: Callable[..., Any], path_name: str) -> Callable[..., Any]:
    """The Task's function: calls ``func``, found at ``NAMESPACE.path_name``."""
    with _lock:
        found = _runners.get(func)
    if found is not None:
        return found
    target = func
    runner: Callable[..., Any]
    if inspect.iscoroutinefunction(func):

        async def runner(*args: Any, **kwargs: Any) -> Any:
            return _json_or_none(await target(*args, **kwargs))

    else:

        def runner(*args: Any, **kwargs: Any) -> Any:
            return _json_or_none(target(*args, **kwargs))

    runner.__module__ = NAMESPACE
    runner.__qualname__ = path_name
    runner.__name__ = func.__name__
    runner.__doc__ = func.__doc__
    with _lock:
        return _runners.setdefault(func, runner)


def _json_or_none(value: Any) -> Any:
    # raincheck ignores return values. Handing the backend one it cannot store
    # would fail a task that did its work, and a backend that retries would do
    # that work again.
    return value if json_problem(value, exact=True) is None else None


def task_at_path(name: str) -> Task[Any, Any]:
    """The Task at ``NAMESPACE.name``: ``app:jobs:send_email`` runs ``app.jobs.send_email``.

    This is how a worker in another process finds a routed job's Task.
    """
    if ":" not in name:
        raise AttributeError(f"module {NAMESPACE!r} has no attribute {name!r}")
    module_name, _, qualname = name.rpartition(":")
    target = getattr(importlib.import_module(module_name.replace(":", ".")), qualname, None)
    if not _is_raincheck_function(target):
        raise AttributeError(f"{name!r} does not name a @raincheck function")
    alias = conf.get().tasks_backend or DEFAULT_TASK_BACKEND_ALIAS
    return routed_task(target.func, alias)


def _forget_tasks(*, setting: str, **kwargs: Any) -> None:
    # A Task is validated against its backend when it is made; make it again.
    if setting in ("TASKS", "RAINCHECK_TASKS_BACKEND"):
        with _lock:
            _tasks.clear()


setting_changed.connect(_forget_tasks, dispatch_uid="raincheck.tasks.routing.forget_tasks")
