"""raincheck's settings: one typed, validated snapshot, rebuilt when settings change.

``schedule()`` runs on every request, so it must not pay for ``getattr(settings,
name, default)`` (an unset setting costs an exception inside ``LazySettings``).
The snapshot is built on first use and thrown away on ``setting_changed``, which
``override_settings`` and pytest-django's ``settings`` fixture both send, so a
setting is still read "at call time" as far as any test or user can observe.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from django.conf import settings as django_settings
from django.core.exceptions import ImproperlyConfigured
from django.core.signals import setting_changed

BACKPRESSURE_POLICIES: Final = ("block", "caller_runs", "drop", "drop_oldest")
TASKS_ENQUEUE_MODES: Final = ("request_finished", "pool")
SHUTDOWN_TIMEOUT_DEFAULT: Final = 10.0
# Async jobs awaiting at once on raincheck's event loop: each costs a task, not a
# thread, so the bound is about memory and the services they call.
ASYNC_CONCURRENCY_DEFAULT: Final = 100
# The cap on pool threads. The pool starts threads only while jobs wait, retires
# them when idle, and grows past what helps only for jobs that wait rather than
# compute (raincheck.sizing), so the cap can be generous.
MAX_WORKERS_DEFAULT: Final = 32
_UNSET: Final = object()


def default_max_workers() -> int:
    return MAX_WORKERS_DEFAULT


@dataclass(frozen=True)
class Setting:
    """One ``RAINCHECK_*`` setting: its default and how to validate it."""

    name: str
    check_id: str
    expected: str
    default: Callable[[], Any]
    valid: Callable[[Any], bool]

    def read(self) -> Any:
        value = getattr(django_settings, self.name, _UNSET)
        return self.default() if value is _UNSET else value

    def problem(self) -> str | None:
        """A sentence saying what is wrong with the configured value, or None."""
        value = getattr(django_settings, self.name, _UNSET)
        if value is _UNSET or self.valid(value):
            return None
        return f"{self.name} must be {self.expected}, not {value!r}."


def _is_int(value: Any, minimum: int) -> bool:
    # bool is an int subclass; RAINCHECK_MAX_WORKERS = True is a mistake, not 1.
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_seconds(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0


SETTINGS: Final = (
    Setting(
        "RAINCHECK_MAX_WORKERS",
        "raincheck.E001",
        "an int of at least 1",
        default_max_workers,
        lambda v: _is_int(v, 1),
    ),
    Setting(
        "RAINCHECK_MAX_QUEUE",
        "raincheck.E002",
        "an int of at least 0 (0 means unbounded)",
        lambda: 10_000,
        lambda v: _is_int(v, 0),
    ),
    Setting(
        "RAINCHECK_BACKPRESSURE",
        "raincheck.E003",
        "one of " + ", ".join(repr(p) for p in BACKPRESSURE_POLICIES),
        lambda: "block",
        lambda v: v in BACKPRESSURE_POLICIES,
    ),
    Setting(
        "RAINCHECK_BLOCK_TIMEOUT",
        "raincheck.E004",
        "a number of seconds of at least 0",
        lambda: 5.0,
        _is_seconds,
    ),
    Setting(
        "RAINCHECK_SHUTDOWN_TIMEOUT",
        "raincheck.E005",
        "a number of seconds of at least 0",
        lambda: SHUTDOWN_TIMEOUT_DEFAULT,
        _is_seconds,
    ),
    Setting(
        "RAINCHECK_RUN_ASYNC",
        "raincheck.E006",
        "True or False",
        lambda: True,
        lambda v: isinstance(v, bool),
    ),
    Setting(
        "RAINCHECK_IMMEDIATE",
        "raincheck.E007",
        "True or False",
        lambda: False,
        lambda v: isinstance(v, bool),
    ),
    Setting(
        "RAINCHECK_DRAIN_ON_SIGTERM",
        "raincheck.E008",
        "True or False",
        lambda: False,
        lambda v: isinstance(v, bool),
    ),
    Setting(
        "RAINCHECK_TASKS_BACKEND",
        "raincheck.E009",
        "None or the alias of a backend in TASKS",
        lambda: None,
        lambda v: v is None or (isinstance(v, str) and v != ""),
    ),
    Setting(
        "RAINCHECK_SLOW_JOB_WARNING",
        "raincheck.E010",
        "None or a number of seconds greater than 0",
        lambda: None,
        lambda v: v is None or (_is_seconds(v) and v > 0),
    ),
    Setting(
        "RAINCHECK_TASKS_ENQUEUE",
        "raincheck.E013",
        "one of " + ", ".join(repr(m) for m in TASKS_ENQUEUE_MODES),
        # The default loses least: a routed job is in the broker once
        # request_finished returns, not a pool hand-off later (docs/scaling.rst).
        lambda: "request_finished",
        lambda v: v in TASKS_ENQUEUE_MODES,
    ),
    Setting(
        "RAINCHECK_ASYNC_CONCURRENCY",
        "raincheck.E014",
        "an int of at least 1",
        lambda: ASYNC_CONCURRENCY_DEFAULT,
        lambda v: _is_int(v, 1),
    ),
)


@dataclass(frozen=True, slots=True)
class Conf:
    """A validated snapshot of every ``RAINCHECK_*`` setting."""

    max_workers: int
    max_queue: int
    backpressure: str
    block_timeout: float
    shutdown_timeout: float
    run_async: bool
    immediate: bool
    drain_on_sigterm: bool
    tasks_backend: str | None
    slow_job_warning: float | None
    tasks_enqueue: str
    async_concurrency: int
    # Django's own DEBUG: .schedule() then checks arguments against the signature.
    debug: bool


_conf: Conf | None = None
_listeners: list[Callable[[], None]] = []


def get() -> Conf:
    """The current settings; raises ImproperlyConfigured for an invalid one."""
    conf = _conf
    if conf is None:
        conf = _load()
    return conf


def problems() -> list[tuple[Setting, str]]:
    """Each invalid setting with the sentence that says what is wrong."""
    found = ((setting, setting.problem()) for setting in SETTINGS)
    return [(setting, problem) for setting, problem in found if problem is not None]


def _load() -> Conf:
    global _conf
    invalid = problems()
    if invalid:
        raise ImproperlyConfigured(" ".join(problem for _, problem in invalid))
    values = {s.name.removeprefix("RAINCHECK_").lower(): s.read() for s in SETTINGS}
    conf = Conf(**values, debug=bool(getattr(django_settings, "DEBUG", False)))
    _conf = conf
    return conf


def on_change(listener: Callable[[], None]) -> None:
    """Call ``listener`` whenever a ``RAINCHECK_*`` setting changes."""
    _listeners.append(listener)


def _setting_changed(*, setting: str, **kwargs: Any) -> None:
    global _conf
    if setting.startswith("RAINCHECK_") or setting == "DEBUG":
        _conf = None
        for listener in _listeners:
            listener()


setting_changed.connect(_setting_changed, dispatch_uid="raincheck.conf")
