"""Task arguments must travel as JSON: say which one cannot, and why."""

from __future__ import annotations

import inspect
import json
import reprlib
from collections.abc import Callable, Sequence
from typing import Any

from raincheck.tasks.framework import normalize_json


def json_problem(value: Any, *, exact: bool) -> str | None:
    """Why ``value`` cannot travel as a task argument, or None if it can.

    ``exact=False`` accepts what Django's own backends accept (``normalize_json``:
    a tuple arrives as a list). ``exact=True`` also wants the value to come back
    from a JSON round trip equal to itself, as it will from a durable backend's
    storage (``{1: "a"}`` would arrive as ``{"1": "a"}``; NaN not at all).
    """
    try:
        normalized = normalize_json(value)
    except (TypeError, ValueError) as exc:
        return str(exc)
    if not exact:
        return None
    try:
        back = json.loads(json.dumps(normalized, allow_nan=False))
    except ValueError as exc:
        return str(exc)
    if back != normalized:
        return f"it would arrive as {reprlib.repr(back)}"
    return None


def check_json_arguments(
    name: str,
    func: Callable[..., Any],
    args: Sequence[Any],
    kwargs: dict[str, Any],
    *,
    exact: bool,
    skip: int = 0,
) -> None:
    """Raise ``TypeError`` naming the first argument that cannot travel as JSON.

    ``skip``: leading parameters of ``func`` not passed in ``args`` (a task's context).
    """
    for position, value in enumerate(args):
        problem = json_problem(value, exact=exact)
        if problem is not None:
            where = f"argument {position}{_parameter_name(func, position + skip)}"
            raise TypeError(_argument_error(name, where, value, problem))
    for key, value in kwargs.items():
        problem = json_problem(value, exact=exact)
        if problem is not None:
            raise TypeError(_argument_error(name, f"argument {key!r}", value, problem))


def _argument_error(name: str, where: str, value: Any, problem: str) -> str:
    return (
        f"{name}: {where} must survive a JSON round trip, and "
        f"{reprlib.repr(value)} does not ({problem})."
    )


def _parameter_name(func: Callable[..., Any], position: int) -> str:
    try:
        parameters = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        return ""
    if position < len(parameters) and parameters[position].kind in (
        inspect.Parameter.POSITIONAL_ONLY,
        inspect.Parameter.POSITIONAL_OR_KEYWORD,
    ):
        return f" ({parameters[position].name!r})"
    return ""
