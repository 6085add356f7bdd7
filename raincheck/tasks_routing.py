"""RAINCHECK_TASKS_BACKEND: send ``@raincheck`` jobs to a Django Tasks backend.

With ``RAINCHECK_TASKS_BACKEND = "durable"``, ``.schedule()`` checks at once that
the ``durable`` backend can take the job (a module-level function, arguments
that survive JSON), then buffers in its place a job that enqueues it there once
the response has been sent.

On the backend the function runs as a Task named
``raincheck.tasks_routing.<module, dots as colons>:<function>``. A worker in
another process (``db_worker``, an RQ worker) finds a task by importing its
path, and the function's own path holds the ``@raincheck`` function, not a
Task; so this module answers those names itself (``__getattr__`` below).
"""

from __future__ import annotations

import importlib
import inspect
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from django.core.checks import CheckMessage, Error
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

from raincheck import conf
from raincheck.jobs import Job, JobFunction

if TYPE_CHECKING:
    from raincheck.backends import Task

_tasks: dict[tuple[Callable[..., Any], str], Task[Any, Any]] = {}
_runners: dict[Callable[..., Any], Callable[..., Any]] = {}
_lock = threading.Lock()


class RoutedFunction:
    """Stands for a ``@raincheck`` function in its request's buffer: running it
    enqueues the original on the Tasks backend."""

    __slots__ = ("func", "name", "on_success", "task")
    is_async = False

    def __init__(self, fn: JobFunction, task: Task[Any, Any]) -> None:
        self.task = task
        self.name = fn.name
        self.on_success = fn.on_success
        self.func: Callable[..., Any] = task.enqueue

    def __repr__(self) -> str:
        return f"<raincheck {self.name} via Tasks backend {self.task.backend!r}>"


def enqueue_later(job: Job, alias: str) -> Job:
    """The job that enqueues ``job`` on the ``alias`` Tasks backend.

    Raises now, naming the function and the argument, if that backend could not
    take it: so a mistake shows in the view that made it, not later in a worker.
    """
    from raincheck import backends

    fn, args, kwargs = job
    routed = routed_task(fn.func, alias)
    try:
        backends.check_json_arguments(fn.name, fn.func, args, kwargs, exact=True)
    except TypeError as exc:
        raise TypeError(
            f"{exc} RAINCHECK_TASKS_BACKEND = {alias!r} sends it to a Tasks backend, "
            "which stores arguments as JSON."
        ) from None
    return (RoutedFunction(fn, routed), args, kwargs)


def routed_task(func: Callable[..., Any], alias: str) -> Task[Any, Any]:
    """The Task that runs ``func`` on the ``alias`` backend (one per function and alias)."""
    key = (func, alias)
    found = _tasks.get(key)
    if found is not None:
        return found
    from raincheck import backends

    name = _dotted(func)
    runner = _runner(func, _task_name(func))
    try:
        found = backends.task(runner, backend=alias)
    except backends.InvalidTaskBackend as exc:
        raise ImproperlyConfigured(
            f"RAINCHECK_TASKS_BACKEND = {alias!r} is not a backend in TASKS ({exc})"
        ) from exc
    except backends.InvalidTask as exc:
        raise backends.InvalidTask(
            f"{name} cannot be sent to Tasks backend {alias!r}: {exc}"
        ) from exc
    with _lock:
        return _tasks.setdefault(key, found)


def _dotted(func: Callable[..., Any]) -> str:
    return f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"


def _task_name(func: Callable[..., Any]) -> str:
    """This module's attribute name for ``func``'s Task; TypeError if a worker
    could not import ``func`` again."""
    from raincheck import backends
    from raincheck.decorators import RaincheckFunction

    name = _dotted(func)
    reason = "a Tasks backend's worker imports the function by its dotted path"
    if not backends.is_module_level_function(func):
        raise TypeError(f"{name} is not a module-level function: {reason}.")
    module, qualname = func.__module__, func.__qualname__
    if module == "__main__":
        raise TypeError(f"{name} is defined in __main__: {reason}, and __main__ is not importable.")
    if "." in qualname:
        raise TypeError(f"{name} is defined inside {qualname.rpartition('.')[0]}: {reason}.")
    found = getattr(sys.modules.get(module), qualname, None)
    if not (isinstance(found, RaincheckFunction) and found.func is func):
        raise TypeError(
            f"{name} cannot be found again by a worker: {module}.{qualname} is {found!r}, "
            "not its @raincheck function; decorate the function where it is defined, "
            "under its own name."
        )
    return module.replace(".", ":") + ":" + qualname


def _runner(func: Callable[..., Any], task_name: str) -> Callable[..., Any]:
    """The Task's function: calls ``func``, reachable as this module's ``task_name``."""
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

    runner.__module__ = __name__
    runner.__qualname__ = task_name
    runner.__name__ = func.__name__
    runner.__doc__ = func.__doc__
    with _lock:
        return _runners.setdefault(func, runner)


def _json_or_none(value: Any) -> Any:
    # raincheck ignores return values. Handing the backend one it cannot store
    # would fail a task that did its work, and a backend that retries would do
    # that work again.
    from raincheck import backends

    return value if backends.json_problem(value, exact=True) is None else None


def __getattr__(name: str) -> Any:
    """``raincheck.tasks_routing.app:jobs:send_email`` is the Task of
    ``app.jobs.send_email``: how a worker in another process finds it."""
    if ":" not in name:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from raincheck import backends
    from raincheck.decorators import RaincheckFunction

    module_name, _, qualname = name.rpartition(":")
    target = getattr(importlib.import_module(module_name.replace(":", ".")), qualname, None)
    if not isinstance(target, RaincheckFunction):
        raise AttributeError(f"{name!r} does not name a @raincheck function")
    alias = conf.get().tasks_backend or backends.DEFAULT_TASK_BACKEND_ALIAS
    return routed_task(target.func, alias)


def check_tasks_backend(**kwargs: Any) -> list[CheckMessage]:
    """raincheck.E011: RAINCHECK_TASKS_BACKEND names no backend in TASKS.
    raincheck.E012: it is set, but there is no Tasks framework to send jobs to."""
    if conf.problems():
        return []  # an invalid value is raincheck.E009
    alias = conf.get().tasks_backend
    if alias is None:
        return []
    try:
        from raincheck import backends
    except ImportError as exc:
        return [
            Error(
                f"RAINCHECK_TASKS_BACKEND = {alias!r}, but {exc}",
                hint="Upgrade to Django 6.0 or later, or install django-tasks.",
                id="raincheck.E012",
            )
        ]
    configured = backends.task_backends.settings
    if alias not in configured:
        return [
            Error(
                f"RAINCHECK_TASKS_BACKEND = {alias!r} is not a backend in TASKS "
                f"(TASKS has {', '.join(map(repr, configured)) or 'none'}).",
                hint="Add that alias to TASKS, or set RAINCHECK_TASKS_BACKEND to one it has.",
                id="raincheck.E011",
            )
        ]
    return []


def _forget_tasks(*, setting: str, **kwargs: Any) -> None:
    # A Task is validated against its backend when it is made; make it again.
    if setting in ("TASKS", "RAINCHECK_TASKS_BACKEND"):
        with _lock:
            _tasks.clear()


setting_changed.connect(_forget_tasks, dispatch_uid="raincheck.tasks_routing.forget_tasks")
