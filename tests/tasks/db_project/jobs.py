"""The job the view schedules; the ``db_worker`` process runs it."""

from __future__ import annotations

from raincheck import raincheck
from tests.tasks.db_project.events import record


@raincheck
def greet(name: str) -> str:
    record("job ran")
    return f"hello {name}"
