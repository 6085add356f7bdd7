"""A drop-in for django-after-response's API: ``@after_response.enable``.

``import after_response`` becomes ``from raincheck import after_response``; the
decorated function keeps its ``.after_response(...)`` method, which is
raincheck's ``.schedule(...)``. See docs/migration.rst for the differences
(jobs run in the order they were scheduled, on a bounded pool).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from typing_extensions import ParamSpec

from raincheck.decorators import RaincheckFunction

P = ParamSpec("P")
R = TypeVar("R")


class AfterResponseFunction(RaincheckFunction[P, R]):
    """A raincheck function that also answers to django-after-response's name."""

    def after_response(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """The same as ``.schedule(...)``."""
        self.schedule(*args, **kwargs)


def enable(func: Callable[P, R]) -> AfterResponseFunction[P, R]:
    """``@after_response.enable``: ``func.after_response(...)`` runs it after the response."""
    if not callable(func):
        raise TypeError(f"@after_response.enable decorates a function, not {func!r}")
    return AfterResponseFunction(func)
