"""docs/observability.rst's ``job_failed`` receiver, word for word but for type hints.

settings.py imports it when ``$RAINCHECK_TEST_OBSERVE`` is ``sentry-recipe`` (the
project has no app of its own whose ``ready()`` would).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import sentry_sdk
from django.dispatch import receiver
from sentry_sdk.integrations.logging import ignore_logger

from raincheck.signals import job_failed

# The receiver reports each failure: the logging integration would report it again.
ignore_logger("raincheck")


@receiver(job_failed)
def report_job_failure(
    sender: Callable[..., Any],
    exception: BaseException,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    **extra: Any,
) -> None:
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("raincheck.job", f"{sender.__module__}.{sender.__qualname__}")
        scope.set_context("raincheck", {"args": repr(args), "kwargs": repr(kwargs)})
        sentry_sdk.capture_exception(exception)
