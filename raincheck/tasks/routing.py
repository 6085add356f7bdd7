"""RAINCHECK_TASKS_BACKEND: send ``@raincheck`` jobs to a Django Tasks backend.

With ``RAINCHECK_TASKS_BACKEND = "durable"``, ``.schedule()`` checks at once that
the ``durable`` backend can take the job (a module-level function, arguments
that survive JSON), then buffers in its place a job that enqueues it there once
the response has been sent.

On the backend the function runs as a Task whose path is in
``raincheck.tasks.routed`` (see that module for the stable scheme): the
function's own path holds the ``@raincheck`` function, not a Task, and a worker
in another process finds a Task by its path.

Some backends find Tasks another way: the Celery-based ones (django-tasks-celery,
django-tasks-fennel) register each Task with Celery, by name, when the Task is
made, and a Celery worker looks a message's task up by that name only, never
importing it. So when the setting is set, ``make_tasks_up_front()`` (called by
the app's ``ready()``) makes the Task of every ``@raincheck`` function already
decorated, and of every one decorated later, as its module is imported: a worker
that imports the jobs' modules (Celery's autodiscovered ``tasks.py``) knows
them all before its first message.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import sys
import threading
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Final, TypeGuard, TypeVar

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

logger = logging.getLogger("raincheck")
F = TypeVar("F", bound=JobFunction)

# The module that answers routed Tasks' paths. Stored by durable backends: never rename.
NAMESPACE: Final = "raincheck.tasks.routed"

# Tasks checked at a .schedule() or a worker's lookup, and Tasks made up front,
# whose function was not yet bound to its module's name to check it.
_tasks: dict[tuple[Callable[..., Any], str], Task[Any, Any]] = {}
_up_front: dict[tuple[Callable[..., Any], str], Task[Any, Any]] = {}
_runners: dict[Callable[..., Any], Callable[..., Any]] = {}
_lock = threading.Lock()


class RoutedFunction:
    """Stands for a ``@raincheck`` function in its request's buffer: running it
    enqueues the original on the Tasks backend."""

    __slots__ = ("enqueue_here", "func", "name", "on_success", "task")
    is_async = False
    routable = False  # it already is

    def __init__(self, fn: JobFunction, task: Task[Any, Any], *, enqueue_here: bool) -> None:
        self.task = task
        self.name = fn.name
        self.on_success = fn.on_success
        self.func: Callable[..., Any] = task.enqueue
        # RAINCHECK_TASKS_ENQUEUE = "request_finished": the hand-off runs this
        # job on its own thread instead of giving it to the pool.
        self.enqueue_here = enqueue_here

    def __repr__(self) -> str:
        return f"<raincheck {self.name} via Tasks backend {self.task.backend!r}>"


def routed(job: Job, alias: str) -> Job:
    """The job that enqueues ``job`` on the ``alias`` Tasks backend.

    Raises now, naming the function and the argument, if that backend could not
    take it: so a mistake shows in the view that made it, not later in a worker.
    """
    fn, args, kwargs, context = job
    found = routed_task(fn.func, alias)
    try:
        check_json_arguments(fn.name, fn.func, args, kwargs, exact=True)
    except TypeError as exc:
        raise TypeError(
            f"{exc} RAINCHECK_TASKS_BACKEND = {alias!r} sends it to a Tasks backend, "
            "which stores arguments as JSON."
        ) from None
    here = conf.get().tasks_enqueue == "request_finished"
    return (RoutedFunction(fn, found, enqueue_here=here), args, kwargs, context)


def routed_task(func: Callable[..., Any], alias: str) -> Task[Any, Any]:
    """The Task that runs ``func`` on the ``alias`` backend (one per function and alias)."""
    key = (func, alias)
    found = _tasks.get(key)
    if found is not None:
        return found
    path_name = _path_name(func)
    found = _up_front.get(key) or _make_task(func, alias, path_name)
    with _lock:
        return _tasks.setdefault(key, found)


def _make_task(func: Callable[..., Any], alias: str, path_name: str) -> Task[Any, Any]:
    try:
        return task(_runner(func, path_name), backend=alias)
    except InvalidTaskBackend as exc:
        raise ImproperlyConfigured(
            f"RAINCHECK_TASKS_BACKEND = {alias!r} is not a backend in TASKS ({exc})"
        ) from exc
    except InvalidTask as exc:
        raise InvalidTask(
            f"{_dotted(func)} cannot be sent to Tasks backend {alias!r}: {exc}"
        ) from exc


def make_tasks_up_front(decorated: Iterable[F], hooks: list[Callable[[F], None]]) -> None:
    """Make the Task of each function in ``decorated``, and of each one decorated
    from now on (``hooks`` is called with it), for backends that register Tasks
    as they are made (module docstring)."""
    for fn in decorated:
        make_task_up_front(fn)
    if make_task_up_front not in hooks:
        hooks.append(make_task_up_front)


def make_task_up_front(fn: JobFunction) -> None:
    """Make ``fn``'s Task now, if it is routed and could be; never raises.

    This reads settings while a module is being imported, which raincheck
    otherwise never does: here it is the point, since a Celery worker finds a
    Task only if it was made before the worker's first message. A Task that
    cannot be made is logged; ``.schedule()`` raises the same error in the view.
    """
    try:
        alias = conf.get().tasks_backend
    except ImproperlyConfigured:
        return  # raincheck's system checks report it
    func = fn.func
    if alias is None or not fn.routable or (func, alias) in _up_front:
        return
    module, qualname = getattr(func, "__module__", None), getattr(func, "__qualname__", "")
    if module in (None, "__main__") or "." in qualname or not is_module_level_function(func):
        return  # .schedule() says why a worker could not import it
    try:
        found = _make_task(func, alias, module.replace(".", ":") + ":" + qualname)
    except Exception as exc:
        logger.warning("raincheck: %s cannot run on a Tasks backend: %s", fn.name, exc)
        return
    with _lock:
        _up_front.setdefault((func, alias), found)


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
            _up_front.clear()


setting_changed.connect(_forget_tasks, dispatch_uid="raincheck.tasks.routing.forget_tasks")
