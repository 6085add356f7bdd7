"""The jobs the views schedule. Named tasks.py so that Celery's autodiscovery
imports it in the worker (docs/scaling.rst)."""

from __future__ import annotations

from raincheck import raincheck
from tests.tasks.db_project.events import record


@raincheck
def greet(name: str) -> str:
    record(f"job ran {name}")
    return f"hello {name}"


@raincheck
def fail(message: str) -> None:
    record(f"job failed {message}")
    raise ValueError(message)
