"""``enqueue()``: schedule a ``@raincheck`` job and get its ``TaskResult`` when it is routed.

``.schedule()`` returns nothing, so that the common path stays one append; a
routed job is enqueued after the response, when the view has long returned. A
view that must hand the client a result id (to poll, to show progress) calls
``enqueue(send_receipt, order.id)`` instead: under
:setting:`RAINCHECK_TASKS_BACKEND` the job is enqueued on that backend at once,
and the backend's ``TaskResult`` comes back; otherwise it is ``.schedule()``
and the answer is ``None``.
"""

from __future__ import annotations

import contextvars
from typing import Any, TypeVar

from typing_extensions import ParamSpec

from raincheck import conf, scheduling
from raincheck.decorators import RaincheckFunction
from raincheck.tasks.framework import TaskResult
from raincheck.tasks.routing import RoutedFunction, routed

P = ParamSpec("P")
R = TypeVar("R")


def enqueue(
    fn: RaincheckFunction[P, R], /, *args: P.args, **kwargs: P.kwargs
) -> TaskResult[Any, Any] | None:
    """Enqueue ``fn(*args, **kwargs)`` on the routed Tasks backend now; its TaskResult.

    The job is in the backend when this returns, before the response is sent:
    a worker may start it while the view still runs. Without routing, under
    :setting:`RAINCHECK_IMMEDIATE` or inside ``raincheck.testing.capture()``,
    this is ``fn.schedule(*args, **kwargs)`` and returns None. Checks and
    errors are those of ``.schedule()`` under routing. ``on_success`` and
    ``unique`` do not apply (the request has not ended); ``on_commit=True``
    functions are refused, as the job would be enqueued before the commit.
    """
    if fn.on_commit:
        raise TypeError(
            f"{fn.name} is on_commit=True: enqueue() would enqueue it before the commit. "
            "Call enqueue() inside transaction.on_commit() instead."
        )
    settings = conf.get()
    alias = settings.tasks_backend
    if alias is None or settings.immediate or scheduling.capturing():
        fn.schedule(*args, **kwargs)
        return None
    job_fn, job_args, job_kwargs, _ = routed((fn, args, kwargs, contextvars.copy_context()), alias)
    assert isinstance(job_fn, RoutedFunction)
    result: TaskResult[Any, Any] = job_fn.task.enqueue(*job_args, **job_kwargs)
    return result
