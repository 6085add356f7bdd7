"""System checks for the RAINCHECK_* settings (ids raincheck.E001-E009)."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error

from raincheck.conf import SETTINGS


def check_settings(**kwargs: Any) -> list[CheckMessage]:
    errors: list[CheckMessage] = []
    for setting in SETTINGS:
        problem = setting.problem()
        if problem is not None:
            errors.append(Error(problem, hint="See docs/settings.rst.", id=setting.check_id))
    return errors
