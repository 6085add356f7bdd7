"""``@raincheck``: the decorator and the callable it returns."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from asgiref.sync import markcoroutinefunction
from typing_extensions import ParamSpec

from raincheck.buffers import current_buffer
from raincheck.scheduling import hand_off, route, schedule_slow

P = ParamSpec("P")
_current_buffer = current_buffer.get
R = TypeVar("R")


class RaincheckFunction(Generic[P, R]):
    """A function that can also be scheduled to run after the response.

    Calling it calls the original function, unchanged. ``.schedule(...)`` takes
    the same arguments and queues the call instead.
    """

    func: Callable[P, R]
    name: str
    is_async: bool

    def __init__(self, func: Callable[P, R]) -> None:
        self.func = func
        self.name = f"{func.__module__}.{func.__qualname__}"
        self.is_async = inspect.iscoroutinefunction(func)
        functools.update_wrapper(self, func)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run this function with these arguments once the response has been sent.

        Outside a request the job is handed to the pool at once.
        """
        # The hot path: one flag, one context-variable read, one append.
        buffer = _current_buffer()
        if route.slow and schedule_slow((self, args, kwargs)):
            return
        if buffer is None:
            hand_off([(self, args, kwargs)])
        else:
            buffer.append((self, args, kwargs))

    def __repr__(self) -> str:
        return f"<raincheck {self.name}>"


@overload
def raincheck(func: Callable[P, R], /) -> RaincheckFunction[P, R]: ...


@overload
def raincheck() -> Callable[[Callable[P, R]], RaincheckFunction[P, R]]: ...


def raincheck(
    func: Callable[P, R] | None = None, /, **options: Any
) -> RaincheckFunction[P, R] | Callable[[Callable[P, R]], RaincheckFunction[P, R]]:
    """Decorate a function so that ``func.schedule(...)`` runs it after the response.

    Works bare (``@raincheck``) and called (``@raincheck()``).
    """
    if options:
        unknown = ", ".join(sorted(options))
        raise TypeError(f"raincheck() got unexpected keyword argument(s): {unknown}")

    def decorate(func: Callable[P, R]) -> RaincheckFunction[P, R]:
        if not callable(func):
            raise TypeError(f"@raincheck decorates a function, not {type(func).__name__} {func!r}")
        return RaincheckFunction(func)

    if func is None:
        return decorate
    return decorate(func)
