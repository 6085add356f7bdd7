"""``@raincheck``: the decorated object is the original function plus ``.schedule()``."""

from __future__ import annotations

import asyncio
import inspect
import threading
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction

import raincheck as raincheck_module
from raincheck import RaincheckFunction, raincheck
from raincheck.testing import capture, wait_idle
from tests.app import jobs


def greet(to: str, *, punctuation: str = "!") -> str:
    """Say hello."""
    return f"hello {to}{punctuation}"


def test_bare_form_returns_a_schedulable_function() -> None:
    """``@raincheck`` without parentheses gives a function with ``.schedule()``."""
    decorated = raincheck(greet)
    assert isinstance(decorated, RaincheckFunction)
    with capture() as captured:
        decorated.schedule("ada", punctuation="?")
    assert captured == [(decorated, ("ada",), {"punctuation": "?"})]


def test_called_form_returns_a_schedulable_function() -> None:
    """``@raincheck()`` with parentheses decorates exactly like the bare form."""
    decorated = raincheck()(greet)
    assert isinstance(decorated, RaincheckFunction)
    with capture() as captured:
        decorated.schedule("ada")
    assert captured.calls() == [(greet, ("ada",), {})]


def test_public_name_is_exported() -> None:
    """``from raincheck import raincheck`` is the decorator itself."""
    assert raincheck_module.raincheck is raincheck


def test_plain_call_runs_the_function_now_and_returns_its_value() -> None:
    """Calling the decorated function runs it at once, in the caller, as before."""
    assert raincheck(greet)("ada", punctuation=".") == "hello ada."
    jobs.remember("direct")
    assert jobs.calls == [(threading.current_thread().name, "direct")]


def test_plain_call_propagates_exceptions() -> None:
    """A plain call of a decorated function raises what the function raises."""
    with pytest.raises(ValueError, match="plain"):
        jobs.explode("plain")


def test_metadata_is_preserved() -> None:
    """Name, qualified name, module, docstring and ``__wrapped__`` are the original's."""
    decorated = raincheck(greet)
    assert decorated.__name__ == "greet"
    assert decorated.__qualname__ == "greet"
    assert decorated.__module__ == __name__
    assert decorated.__doc__ == "Say hello."
    assert decorated.__wrapped__ is greet  # type: ignore[attr-defined]


def test_signature_is_preserved() -> None:
    """``inspect.signature`` of the decorated function is the original's."""
    assert inspect.signature(raincheck(greet)) == inspect.signature(greet)


def test_dotted_name_is_module_and_qualified_name() -> None:
    """A job's name, used in logs, is the function's dotted path."""
    assert jobs.explode.name == "tests.app.jobs.explode"
    assert repr(jobs.explode) == "<raincheck tests.app.jobs.explode>"


def test_async_function_stays_a_coroutine_function() -> None:
    """A decorated ``async def`` is still detected as a coroutine function."""
    assert inspect.iscoroutinefunction(jobs.remember_async)
    assert iscoroutinefunction(jobs.remember_async)
    assert not inspect.iscoroutinefunction(jobs.remember)
    assert not iscoroutinefunction(jobs.remember)


def test_async_plain_call_can_be_awaited() -> None:
    """Calling a decorated ``async def`` returns a coroutine that runs it when awaited."""
    asyncio.run(jobs.remember_async("awaited"))
    assert jobs.calls == [(threading.current_thread().name, "awaited")]


def test_async_job_is_awaited_on_the_pool() -> None:
    """A scheduled ``async def`` job runs to completion on a pool thread."""
    jobs.remember_async.schedule("scheduled")
    wait_idle()
    [(thread, value)] = jobs.calls
    assert value == "scheduled"
    assert thread.startswith("raincheck-")


@pytest.mark.parametrize("thing", [42, "send_email", object()])
def test_non_callable_is_rejected(thing: Any) -> None:
    """Decorating something that is not callable raises a TypeError naming it."""
    with pytest.raises(TypeError, match=r"@raincheck decorates a function, not") as excinfo:
        raincheck(thing)
    assert repr(thing) in str(excinfo.value)


def test_non_callable_is_rejected_in_called_form() -> None:
    """``@raincheck()`` applied to a non-callable raises a TypeError too."""
    with pytest.raises(TypeError, match=r"not int 42"):
        raincheck()(42)  # type: ignore[arg-type]


def test_unknown_option_is_rejected() -> None:
    """An unknown keyword option raises a TypeError that names it."""
    with pytest.raises(TypeError, match="bogus"):
        raincheck(bogus=True)  # type: ignore[call-overload]
    with pytest.raises(TypeError, match="bogus"):
        raincheck(greet, bogus=True)  # type: ignore[call-overload]
