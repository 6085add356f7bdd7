"""``@raincheck``: the decorated object is the original function plus ``.schedule()``."""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import threading
from typing import Any

import pytest
from asgiref.sync import iscoroutinefunction
from django.db import transaction
from django.http import HttpRequest
from django.test import Client, override_settings

import raincheck as raincheck_module
from raincheck import RaincheckFunction, raincheck
from raincheck.testing import capture, wait_idle
from tests.app import jobs
from tests.app.views import hooks


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
    # vars(): these are set at runtime by functools.update_wrapper (their static
    # types are checked in tests/typing/api.py).
    assert vars(decorated)["__name__"] == "greet"
    assert vars(decorated)["__qualname__"] == "greet"
    assert decorated.__module__ == __name__
    assert decorated.__doc__ == "Say hello."
    assert vars(decorated)["__wrapped__"] is greet


def test_signature_is_preserved() -> None:
    """``inspect.signature`` of the decorated function is the original's."""
    assert inspect.signature(raincheck(greet)) == inspect.signature(greet)


def test_dotted_name_is_module_and_qualified_name() -> None:
    """A job's name, used in logs, is the function's dotted path."""
    assert jobs.explode.name == "tests.app.jobs.explode"
    assert repr(jobs.explode) == "<raincheck tests.app.jobs.explode>"


def test_async_function_stays_a_coroutine_function() -> None:
    """A decorated ``async def`` is still detected as a coroutine function.

    By asgiref's ``iscoroutinefunction`` (which Django uses) everywhere, and by
    ``inspect``'s from Python 3.12, which honours ``markcoroutinefunction``.
    """
    if sys.version_info >= (3, 12):
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


def test_decorating_twice_is_rejected() -> None:
    """Decorating an already decorated function raises a TypeError naming it."""
    with pytest.raises(TypeError, match=r"tests\.app\.jobs\.remember is already decorated"):
        raincheck(jobs.remember)


@pytest.mark.parametrize("option", ["on_commit", "on_success", "unique"])
def test_options_must_be_booleans(option: str) -> None:
    """``on_commit``, ``on_success`` and ``unique`` take True or False, nothing else."""
    with pytest.raises(TypeError, match=f"{option} must be True or False"):
        raincheck(**{option: 1})(greet)  # type: ignore[call-overload]


def test_using_requires_on_commit() -> None:
    """``using=`` without ``on_commit=True`` is a mistake and raises a TypeError."""
    with pytest.raises(TypeError, match="using="):
        raincheck(using="default")


def test_options_keep_metadata_and_plain_calls() -> None:
    """A function decorated with options is still the original function when called."""
    decorated = raincheck(unique=True, on_success=True)(greet)
    assert decorated("ada") == "hello ada!"
    assert vars(decorated)["__name__"] == "greet"
    assert inspect.signature(decorated) == inspect.signature(greet)


# -- on_commit ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_on_commit_waits_for_the_transaction_to_commit() -> None:
    """Inside ``transaction.atomic`` an on_commit job is scheduled only at commit."""
    with transaction.atomic():
        jobs.remember_on_commit.schedule("committed")
        with transaction.atomic():
            jobs.remember_on_commit.schedule("savepoint")
        wait_idle()
        assert jobs.calls == []
    wait_idle()
    assert sorted(jobs.values()) == ["committed", "savepoint"]


@pytest.mark.django_db(transaction=True)
def test_on_commit_job_is_discarded_on_rollback() -> None:
    """A rolled-back transaction (or savepoint) discards its on_commit jobs."""
    with transaction.atomic():
        jobs.remember_on_commit.schedule("kept")
        with contextlib.suppress(RuntimeError), transaction.atomic():
            jobs.remember_on_commit.schedule("rolled back savepoint")
            raise RuntimeError
    with contextlib.suppress(RuntimeError), transaction.atomic():
        jobs.remember_on_commit.schedule("rolled back")
        raise RuntimeError
    wait_idle()
    assert jobs.values() == ["kept"]


@pytest.mark.django_db(transaction=True)
def test_on_commit_outside_a_transaction_schedules_at_once() -> None:
    """Outside a transaction an on_commit job is scheduled immediately."""
    jobs.remember_on_commit.schedule("autocommit")
    wait_idle()
    assert jobs.values() == ["autocommit"]


@pytest.mark.django_db(transaction=True)
def test_on_commit_in_a_request_still_waits_for_the_response() -> None:
    """Committed inside a view, an on_commit job still runs only after the response."""
    seen_in_view: list[str] = []

    def view(request: HttpRequest) -> None:
        with transaction.atomic():
            jobs.remember_on_commit.schedule("after response")
        wait_idle()
        seen_in_view.extend(jobs.values())

    hooks["view"] = view
    Client().get("/hook/view/")
    wait_idle()
    assert seen_in_view == []
    assert jobs.values() == ["after response"]


# -- on_success ---------------------------------------------------------------


def test_on_success_job_runs_after_a_successful_request() -> None:
    """An on_success job runs when its request answered below 400."""
    Client().get("/status/200/")
    wait_idle()
    assert sorted(jobs.values()) == ["always 200", "on_success 200"]


def test_on_success_job_is_skipped_when_the_view_raises() -> None:
    """An on_success job is skipped if its request raised; plain jobs still run."""
    hooks["view"] = lambda request: _schedule_then_fail()
    response = Client(raise_request_exception=False).get("/hook/view/")
    assert response.status_code == 500
    wait_idle()
    assert jobs.values() == ["plain"]


def _schedule_then_fail() -> None:
    jobs.remember_on_success.schedule("skipped")
    jobs.remember.schedule("plain")
    raise RuntimeError("view failed")


@override_settings(MIDDLEWARE=["raincheck.middleware.RaincheckMiddleware"])
@pytest.mark.parametrize("path", ["/status/", "/status-async/"])
def test_on_success_job_is_skipped_after_an_error_status_with_the_middleware(path: str) -> None:
    """With RaincheckMiddleware an on_success job is skipped after a 4xx or 5xx response."""
    client = Client()
    for status in (200, 302, 404, 500):
        client.get(f"{path}{status}/")
    wait_idle()
    assert sorted(v for v in jobs.values() if v.startswith("on_success")) == [
        "on_success 200",
        "on_success 302",
    ]
    assert len([v for v in jobs.values() if v.startswith("always")]) == 4


def test_on_success_job_outside_a_request_runs() -> None:
    """Outside a request there is no response to fail, so an on_success job runs."""
    jobs.remember_on_success.schedule("no request")
    wait_idle()
    assert jobs.values() == ["no request"]


# -- unique -------------------------------------------------------------------


def test_unique_job_is_scheduled_once_per_request_and_arguments() -> None:
    """Within one request, a unique job scheduled again with equal arguments is a no-op."""

    def view(request: HttpRequest) -> None:
        for value in ["a", "b", "a", "a", "b"]:
            jobs.remember_once.schedule(value)
        jobs.remember_once.schedule("a", extra=1)
        jobs.remember_once.schedule("a", extra=1)
        jobs.remember_once.schedule("a", extra=2)

    hooks["view"] = view
    Client().get("/hook/view/")
    wait_idle()
    assert sorted(jobs.values()) == ["a", "a", "a", "b"]


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_unique_keeps_the_first_position() -> None:
    """Deduplicated jobs keep the order of their first scheduling."""

    def view(request: HttpRequest) -> None:
        for value in ["x", "y", "x", "z", "y"]:
            jobs.remember_once.schedule(value)

    hooks["view"] = view
    Client().get("/hook/view/")
    wait_idle()
    assert jobs.values() == ["x", "y", "z"]


def test_unique_is_per_request() -> None:
    """Two requests scheduling the same unique job each get it run."""
    hooks["view"] = lambda request: jobs.remember_once.schedule("same")
    Client().get("/hook/view/")
    Client().get("/hook/view/")
    wait_idle()
    assert jobs.values() == ["same", "same"]


def test_unique_rejects_unhashable_arguments() -> None:
    """A unique job's arguments must be hashable; otherwise ``schedule()`` says which."""
    with pytest.raises(TypeError, match="unhashable list"):
        jobs.remember_once.schedule("a", extra=[1, 2])
    with pytest.raises(TypeError, match="unhashable"):
        jobs.remember_once.schedule("a", extra=([1],))


def test_unique_names_the_function_for_a_tuple_holding_a_list() -> None:
    """A hashable-looking tuple with a list inside: the error names the function and argument."""
    with pytest.raises(TypeError, match=r"remember_once is unique=True.*argument 0.*tuple"):
        jobs.remember_once.schedule((1, [2]))  # type: ignore[arg-type]


def test_unique_error_cuts_a_huge_argument_short() -> None:
    """The error shows a bounded repr of the argument, never all of it."""
    secret = ["password=hunter2"] + ["x" * 100] * 10_000
    with pytest.raises(TypeError) as raised:
        jobs.remember_once.schedule(secret)  # type: ignore[arg-type]
    assert len(str(raised.value)) < 500


def _add(a: int, b: int) -> int:
    return a + b


class Greeter:
    def __call__(self, name: str) -> None:
        jobs.record("greeter", name)


def test_partial_and_callable_object_can_be_decorated() -> None:
    """functools.partial and callable objects are named after what they wrap, and run."""
    import functools

    partial = raincheck(functools.partial(_add, 1))
    greeter = raincheck(Greeter())
    assert partial.name == "tests.test_decorators._add"
    assert greeter.name == "tests.test_decorators.Greeter"
    greeter.schedule("ann")
    wait_idle()
    assert jobs.values() == ["ann"]


@override_settings(DEBUG=True)
def test_debug_checks_arguments_at_schedule() -> None:
    """With DEBUG, wrong arguments fail at .schedule(), in the view, naming the function."""
    with pytest.raises(TypeError, match=r"tests.app.jobs.remember.schedule\(\): .*argument"):
        jobs.remember.schedule("a", "b")  # type: ignore[call-arg]
    with pytest.raises(TypeError, match="missing a required argument: 'value'"):
        jobs.remember.schedule(valu="a")  # type: ignore[call-arg]
    jobs.remember.schedule("fine")
    wait_idle()
    assert jobs.values() == ["fine"]


def test_without_debug_arguments_are_checked_only_when_the_job_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """DEBUG off: .schedule() does no binding (it costs nothing); the job fails when run."""
    jobs.remember.schedule("a", "b")  # type: ignore[call-arg]
    wait_idle()
    assert "raincheck job tests.app.jobs.remember failed" in caplog.text
