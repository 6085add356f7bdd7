"""Settings for the Django Tasks tests: a raincheck backend as ``default``, a
second one, and Django's dummy backend; and these tests' own URLs."""

from __future__ import annotations

from collections.abc import Iterator

import django
import pytest
from pytest_django import Settings as SettingsWrapper

DUMMY_BACKEND = (
    "django.tasks.backends.dummy.DummyBackend"
    if django.VERSION >= (6, 0)
    else "django_tasks.backends.dummy.DummyBackend"
)


@pytest.fixture(autouse=True)
def _tasks_settings(settings: SettingsWrapper) -> Iterator[None]:
    """Point TASKS at raincheck and forget every result once the test is over."""
    settings.TASKS = {
        "default": {"BACKEND": "raincheck.backends.RaincheckBackend"},
        "second": {
            "BACKEND": "raincheck.backends.RaincheckBackend",
            "QUEUES": ["default", "emails"],
        },
        "dummy": {"BACKEND": DUMMY_BACKEND},
        "emails_only": {"BACKEND": "raincheck.backends.RaincheckBackend", "QUEUES": ["emails"]},
    }
    settings.ROOT_URLCONF = "tests.tasks.urls"
    yield
    from tests.tasks import views

    views.results.clear()
    try:
        from raincheck.tasks import backend, results
    except ImportError:
        return
    backend._results = results.ResultStore()
