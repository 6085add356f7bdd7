"""``@raincheck``: the decorator and the callable it returns."""

from __future__ import annotations

import contextvars
import functools
import inspect
import reprlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar, overload

from asgiref.sync import markcoroutinefunction
from django.db import transaction
from typing_extensions import ParamSpec

from raincheck.buffers import current_buffer
from raincheck.scheduling import direct_path, schedule

P = ParamSpec("P")
R = TypeVar("R")

_current_buffer = current_buffer.get
_copy_context = contextvars.copy_context

# Names of on_success functions, for the system check that wants the middleware.
ON_SUCCESS_FUNCTIONS: set[str] = set()
# Every @raincheck function, and what to call with each new one: under
# RAINCHECK_TASKS_BACKEND, raincheck.tasks.routing makes their Tasks up front.
DECORATED: list[RaincheckFunction[Any, Any]] = []
ON_DECORATE: list[Callable[[RaincheckFunction[Any, Any]], None]] = []


class RaincheckFunction(Generic[P, R]):
    """A function that can also be scheduled to run after the response.

    Calling it calls the original function, unchanged. ``.schedule(...)`` takes
    the same arguments and queues the call instead.
    """

    func: Callable[P, R]
    name: str
    is_async: bool
    # Set by functools.update_wrapper; declared so type checkers see them.
    __name__: str
    __qualname__: str
    __wrapped__: Callable[P, R]
    on_commit = False
    using: str | None = None
    on_success = False
    unique = False
    routable = True

    def __init__(self, func: Callable[P, R]) -> None:
        self.func = func
        self.name = _dotted_name(func)
        self.is_async = inspect.iscoroutinefunction(func)
        self._signature: inspect.Signature | None = None
        functools.update_wrapper(self, func)
        if self.is_async:
            markcoroutinefunction(self)
        DECORATED.append(self)
        for hook in ON_DECORATE:
            hook(self)

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        return self.func(*args, **kwargs)

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run this function with these arguments once the response has been sent.

        Outside a request the job is handed to the pool at once.
        """
        # The hot path, kept flat: one flag, one context-variable read, one append.
        if direct_path.open:
            buffer = _current_buffer()
            if buffer is not None and not buffer.closed:
                buffer.append((self, args, kwargs, _copy_context()))
                return
        schedule((self, args, kwargs, _copy_context()))

    def check_arguments(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        """Raise ``TypeError`` now if ``func(*args, **kwargs)`` could not be called.

        ``schedule()`` calls it when ``settings.DEBUG`` is on.
        """
        signature = self._signature
        if signature is None:
            try:
                signature = self._signature = inspect.signature(self.func)
            except (TypeError, ValueError):  # a builtin without a signature
                return
        try:
            signature.bind(*args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{self.name}.schedule(): {exc}") from None

    def __repr__(self) -> str:
        return f"<raincheck {self.name}>"


class ConditionalFunction(RaincheckFunction[P, R]):
    """A raincheck function with options (``on_commit``, ``on_success``, ``unique``).

    A subclass, so that functions without options keep the flat hot path.
    """

    def __init__(
        self,
        func: Callable[P, R],
        *,
        on_commit: bool,
        using: str | None,
        on_success: bool,
        unique: bool,
    ) -> None:
        super().__init__(func)
        if on_success:
            ON_SUCCESS_FUNCTIONS.add(self.name)
        self.on_commit = on_commit
        self.using = using
        self.on_success = on_success
        self.unique = unique

    def schedule(self, *args: P.args, **kwargs: P.kwargs) -> None:
        """Run this function with these arguments once the response has been sent.

        With ``on_commit``, only once the current transaction commits.
        """
        key = self._unique_key(args, kwargs) if self.unique else None
        # The context now, where the view scheduled it, even with on_commit.
        job = (self, args, kwargs, _copy_context())
        if self.on_commit:
            transaction.on_commit(lambda: schedule(job, unique_key=key), using=self.using)
        else:
            schedule(job, unique_key=key)

    def _unique_key(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> object:
        for position, value in enumerate(args):
            _require_hashable(self.name, f"argument {position}", value)
        for name, value in kwargs.items():
            _require_hashable(self.name, f"argument {name!r}", value)
        return (self, args, frozenset(kwargs.items()))


def _require_hashable(job: str, where: str, value: object) -> None:
    try:
        # isinstance(value, Hashable) is not enough: a tuple holding a list passes.
        hash(value)
    except TypeError as exc:
        # reprlib: an argument's repr() can be huge, or hold a secret.
        raise TypeError(
            f"{job} is unique=True, so its arguments must be hashable; "
            f"{where} is an unhashable {type(value).__name__} ({exc}): {reprlib.repr(value)}"
        ) from None


def _dotted_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of a function, or of what a partial or callable object wraps."""
    target: Any = func
    while isinstance(target, functools.partial):
        target = target.func
    qualname = getattr(target, "__qualname__", None)
    if qualname is None:  # a callable object: name it by its class
        target = type(target)
        qualname = target.__qualname__
    return f"{getattr(target, '__module__', None) or '?'}.{qualname}"


@overload
def raincheck(func: Callable[P, R], /) -> RaincheckFunction[P, R]: ...


@overload
def raincheck(
    *,
    on_commit: bool = False,
    using: str | None = None,
    on_success: bool = False,
    unique: bool = False,
) -> Callable[[Callable[P, R]], RaincheckFunction[P, R]]: ...


def raincheck(
    func: Callable[P, R] | None = None,
    /,
    *,
    on_commit: bool = False,
    using: str | None = None,
    on_success: bool = False,
    unique: bool = False,
) -> RaincheckFunction[P, R] | Callable[[Callable[P, R]], RaincheckFunction[P, R]]:
    """Decorate a function so that ``func.schedule(...)`` runs it after the response.

    Works bare (``@raincheck``) and with options (``@raincheck(on_commit=True)``):

    - ``on_commit``: inside ``transaction.atomic``, schedule only when the
      outermost transaction on ``using`` commits; never on rollback.
    - ``on_success``: skip the job if its request raised or answered >= 400.
    - ``unique``: scheduling it again in the same request with equal arguments
      does nothing.
    """
    for option, value in (("on_commit", on_commit), ("on_success", on_success), ("unique", unique)):
        if not isinstance(value, bool):
            raise TypeError(f"raincheck(): {option} must be True or False, not {value!r}")
    if using is not None and not on_commit:
        raise TypeError("raincheck(): using= names the database of on_commit=True")

    def decorate(func: Callable[P, R]) -> RaincheckFunction[P, R]:
        if not callable(func):
            raise TypeError(f"@raincheck decorates a function, not {type(func).__name__} {func!r}")
        if isinstance(func, RaincheckFunction):
            raise TypeError(f"{func.name} is already decorated with @raincheck")
        if inspect.isgeneratorfunction(func) or inspect.isasyncgenfunction(func):
            raise TypeError(
                f"@raincheck cannot run {_dotted_name(func)}: it is a generator function, "
                "whose body runs only when something iterates it, and nothing would."
            )
        if on_commit or on_success or unique:
            return ConditionalFunction(
                func, on_commit=on_commit, using=using, on_success=on_success, unique=unique
            )
        return RaincheckFunction(func)

    if func is None:
        return decorate
    return decorate(func)
