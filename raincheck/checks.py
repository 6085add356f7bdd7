"""System checks: E001-E010, E013 settings; E011-E012 Tasks routing; W001-W003 server, options."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning

from raincheck import conf, servers


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    return [
        Error(problem, hint="See the settings page of raincheck's docs.", id=setting.check_id)
        for setting, problem in conf.problems()
    ]


def check_runtime(**kwargs: Any) -> list[CheckMessage]:
    messages: list[CheckMessage] = []
    if servers.threads_disabled():
        messages.append(Warning(servers.W001_MESSAGE, hint=servers.W001_HINT, id="raincheck.W001"))
    server = servers.sigterm_fatal_server()
    if server is not None and not conf.problems() and not conf.get().drain_on_sigterm:
        messages.append(
            Warning(servers.w002_message(server), hint=servers.w002_hint(), id="raincheck.W002")
        )
    return messages


MIDDLEWARE_PATH = "raincheck.middleware.RaincheckMiddleware"


def check_on_success_middleware(**kwargs: Any) -> list[CheckMessage]:
    from raincheck.decorators import ON_SUCCESS_FUNCTIONS

    if not ON_SUCCESS_FUNCTIONS or MIDDLEWARE_PATH in getattr(settings, "MIDDLEWARE", []):
        return []
    names = ", ".join(sorted(ON_SUCCESS_FUNCTIONS))
    return [
        Warning(
            f"on_success=True is used ({names}) but {MIDDLEWARE_PATH} is not in MIDDLEWARE: "
            "those jobs are skipped after an exception but not after a 4xx or 5xx response.",
            hint=f"Add {MIDDLEWARE_PATH!r} at the top of MIDDLEWARE.",
            id="raincheck.W003",
        )
    ]


def check_tasks_backend(**kwargs: Any) -> list[CheckMessage]:
    """raincheck.E011: RAINCHECK_TASKS_BACKEND names no backend in TASKS.
    raincheck.E012: it is set, but there is no Tasks framework to send jobs to."""
    if conf.problems():
        return []  # an invalid value is raincheck.E009
    alias = conf.get().tasks_backend
    if alias is None:
        return []
    try:
        from raincheck.tasks.framework import task_backends
    except ImportError as exc:
        return [
            Error(
                f"RAINCHECK_TASKS_BACKEND = {alias!r}, but {exc}",
                hint="Upgrade to Django 6.0 or later, or install django-tasks.",
                id="raincheck.E012",
            )
        ]
    configured = task_backends.settings
    if alias not in configured:
        return [
            Error(
                f"RAINCHECK_TASKS_BACKEND = {alias!r} is not a backend in TASKS "
                f"(TASKS has {', '.join(map(repr, configured)) or 'none'}).",
                hint="Add that alias to TASKS, or set RAINCHECK_TASKS_BACKEND to one it has.",
                id="raincheck.E011",
            )
        ]
    return []
