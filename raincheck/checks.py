"""System checks: E001-E009 for invalid settings, W001-W002 for the server."""

from __future__ import annotations

from typing import Any

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
            Warning(servers.w002_message(server), hint=servers.W002_HINT, id="raincheck.W002")
        )
    return messages
