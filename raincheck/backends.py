"""The public path of raincheck's Django Tasks backend.

``TASKS = {"default": {"BACKEND": "raincheck.backends.RaincheckBackend"}}``
(docs/tasks.rst). The backend itself lives in ``raincheck.tasks.backend``.
"""

from __future__ import annotations

from raincheck.tasks.backend import RaincheckBackend, TaskDropped

__all__ = ["RaincheckBackend", "TaskDropped"]
