"""Type-level tests of raincheck's public API, checked by mypy (never run).

Each ``# type: ignore[code]`` marks a call that must be rejected: with
``warn_unused_ignores`` mypy fails if it were ever accepted.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from typing_extensions import assert_type

import raincheck as raincheck_module
from raincheck import RaincheckFunction, Stats, raincheck, shutdown, stats
from raincheck.testing import CapturedJobs, capture, wait_idle


@raincheck
def send(to: str, n: int) -> None:
    """Bare form."""


@raincheck()
def render(template: str, *, context: dict[str, int] | None = None) -> str:
    """Called form, with a return value."""
    return template


@raincheck(on_commit=True, using="default")
def reindex(pk: int) -> None:
    """Options form."""


@raincheck(on_success=True, unique=True)
async def notify(user_id: int, message: str = "") -> None:
    """An async job with options."""


@raincheck
async def fetch(url: str) -> bytes:
    """Bare async form."""
    return b""


# The decorated objects keep the original parameters and return types.
send_type: RaincheckFunction[[str, int], None] = send
reindex_type: RaincheckFunction[[int], None] = reindex
fetch_type: RaincheckFunction[[str], Coroutine[Any, Any, bytes]] = fetch
wrong_parameters: RaincheckFunction[[int, int], None] = send  # type: ignore[assignment]
wrong_return: RaincheckFunction[[str, int], int] = send  # type: ignore[assignment]
as_callable: Callable[[str, int], None] = send

# Plain calls are the original function's.
assert_type(send("a", 1), None)
assert_type(render("t.html", context={"a": 1}), str)
coroutine: Coroutine[Any, Any, bytes] = fetch("https://example.com")
coroutine.close()

# functools.wraps metadata is visible to type checkers too.
assert_type(send.__name__, str)
assert_type(send.__doc__, str | None)

# .schedule() accepts what the function accepts and returns None.
assert_type(send.schedule("a", 1), None)
send.schedule(to="a", n=1)
send.schedule("a", n=1)
render.schedule("t.html")
render.schedule("t.html", context=None)
reindex.schedule(1)
notify.schedule(1)
notify.schedule(1, message="hi")
fetch.schedule("https://example.com")

# .schedule() rejects what the function rejects.
send.schedule(1, "a")  # type: ignore[arg-type]
send.schedule("a")  # type: ignore[call-arg]
send.schedule("a", 1, 2)  # type: ignore[call-arg]
send.schedule("a", n="1")  # type: ignore[arg-type]
send.schedule("a", 1, extra=True)  # type: ignore[call-arg]
render.schedule("t.html", {"a": 1})  # type: ignore[call-arg]
render.schedule("t.html", context={"a": "b"})  # type: ignore[dict-item]
reindex.schedule("1")  # type: ignore[arg-type]
notify.schedule("1")  # type: ignore[arg-type]
fetch.schedule(b"https://example.com")  # type: ignore[arg-type]

# Plain calls are checked the same way.
send(1, "a")  # type: ignore[arg-type]

# The decorator's own arguments are checked.
raincheck(on_commit="yes")  # type: ignore[call-overload]
raincheck(retries=3)  # type: ignore[call-overload]
raincheck(42)  # type: ignore[call-overload]


# The decorator, called, is a decorator.
def plain(x: int) -> str:
    return str(x)


called_form: RaincheckFunction[[int], str] = raincheck()(plain)
bare_form: RaincheckFunction[[int], str] = raincheck(plain)
called_form.schedule("1")  # type: ignore[arg-type]
bare_form.schedule("1")  # type: ignore[arg-type]

# The rest of the public API.
assert_type(stats(), Stats)
assert_type(stats().scheduled, int)
assert_type(stats().queued, int)
assert_type(stats().running, int)
assert_type(stats().succeeded, int)
assert_type(stats().failed, int)
assert_type(stats().dropped, int)
assert_type(stats().ran_in_caller, int)
assert_type(stats().workers, int)
assert_type(shutdown(), None)
assert_type(shutdown(timeout=1.5), None)
assert raincheck_module.raincheck is raincheck
shutdown("soon")  # type: ignore[arg-type]


def use_testing_helpers() -> None:
    with capture() as jobs:
        assert_type(jobs, CapturedJobs)
        send.schedule("a", 1)
    jobs.assert_scheduled(send, "a", 1)
    jobs.run()
    assert_type(wait_idle(), None)
    wait_idle(timeout=0.5)
    wait_idle("0.5")  # type: ignore[arg-type]
