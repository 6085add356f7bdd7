"""The namespace of the Tasks that carry routed ``@raincheck`` jobs.

With ``RAINCHECK_TASKS_BACKEND`` set, ``app.jobs.send_email`` runs on the Tasks
backend as the Task ``raincheck.tasks.routed.app:jobs:send_email``: this
module's name, then the function's module with colons for dots, a colon, and
its name. Durable backends store that path with every queued job, and a worker
in another process imports it to find the Task, so **this module's name and the
scheme are stable**: a path written by one release is found by the next
(docs/tasks.rst, "Stored task paths"; pinned by tests/tasks/test_tasks_routing.py).
"""

from __future__ import annotations

from typing import Any

from raincheck.tasks.routing import task_at_path


def __getattr__(name: str) -> Any:
    """``app:jobs:send_email``: the Task of the ``@raincheck`` function ``app.jobs.send_email``."""
    return task_at_path(name)
