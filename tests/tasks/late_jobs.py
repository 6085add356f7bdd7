"""``@raincheck`` functions in a module the tests import only after the app is
ready, as a Celery worker imports an app's ``tasks.py``."""

from __future__ import annotations

from typing import Any

from raincheck import raincheck
from tests.app.jobs import record


@raincheck
def late(value: str) -> str:
    record("late", value)
    return value


def _nested() -> Any:
    @raincheck
    def inner() -> None:
        record("late", "inner")

    return inner


inner = _nested()
