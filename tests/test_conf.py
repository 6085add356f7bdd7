"""Settings: defaults, validation at use, and overrides seen by the very next schedule()."""

from __future__ import annotations

import threading

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings
from pytest_django import Settings

import raincheck
from raincheck import conf
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.helpers import hold_the_worker


def test_defaults() -> None:
    """Unset settings take the documented defaults."""
    settings = conf.get()
    assert settings.max_workers == 32
    assert settings.max_queue == 10_000
    assert settings.backpressure == "block"
    assert settings.block_timeout == 5.0
    assert settings.shutdown_timeout == 10.0
    assert settings.run_async is True
    assert settings.immediate is False
    assert settings.drain_on_sigterm is False
    assert settings.tasks_backend is None


@override_settings(RAINCHECK_MAX_QUEUE=-1)
def test_invalid_setting_raises_improperly_configured_when_used() -> None:
    """``conf.get()`` refuses an invalid value with a message naming the setting."""
    with pytest.raises(ImproperlyConfigured, match=r"RAINCHECK_MAX_QUEUE must be .*-1"):
        conf.get()


def test_invalid_setting_is_not_cached() -> None:
    """Fixing an invalid setting makes ``conf.get()`` work again."""
    with override_settings(RAINCHECK_BACKPRESSURE="nope"), pytest.raises(ImproperlyConfigured):
        conf.get()
    assert conf.get().backpressure == "block"


def test_override_is_seen_by_the_next_get() -> None:
    """``conf.get()`` reflects an override immediately, and its end."""
    assert conf.get().max_queue == 10_000
    with override_settings(RAINCHECK_MAX_QUEUE=7):
        assert conf.get().max_queue == 7
    assert conf.get().max_queue == 10_000


def test_immediate_override_is_seen_by_the_next_schedule() -> None:
    """Turning IMMEDIATE on after jobs already ran takes effect at the next ``schedule()``."""
    jobs.remember.schedule("pool")
    wait_idle()
    me = threading.current_thread().name
    with override_settings(RAINCHECK_IMMEDIATE=True):
        jobs.remember.schedule("immediate")
        assert jobs.calls[-1] == (me, "immediate")
    jobs.remember.schedule("pool again")
    wait_idle()
    assert jobs.calls[-1][0].startswith("raincheck-")


def test_run_async_override_is_seen_by_the_next_schedule() -> None:
    """Turning RUN_ASYNC off after the pool exists runs the next job in the caller."""
    jobs.remember.schedule("pool")
    wait_idle()
    with override_settings(RAINCHECK_RUN_ASYNC=False):
        jobs.remember.schedule("inline")
        assert jobs.calls[-1] == (threading.current_thread().name, "inline")


@override_settings(RAINCHECK_MAX_WORKERS=1)
def test_backpressure_override_is_seen_by_the_next_schedule() -> None:
    """Queue bound and policy overridden after the pool exists apply to the next hand-off."""
    gate = hold_the_worker()
    with override_settings(RAINCHECK_MAX_QUEUE=1, RAINCHECK_BACKPRESSURE="drop"):
        jobs.remember.schedule("kept")
        jobs.remember.schedule("dropped")
    gate.release.set()
    wait_idle()
    assert jobs.values() == ["held", "kept"]
    assert raincheck.stats().dropped == 1


def test_pytest_django_settings_fixture_is_seen(settings: Settings) -> None:
    """pytest-django's ``settings`` fixture works like ``override_settings``."""
    jobs.remember.schedule("pool")
    wait_idle()
    settings.RAINCHECK_IMMEDIATE = True
    jobs.remember.schedule("immediate")
    assert jobs.calls[-1] == (threading.current_thread().name, "immediate")


def test_changing_an_unrelated_setting_keeps_raincheck_working() -> None:
    """Overriding a non-RAINCHECK setting does not disturb scheduling."""
    with override_settings(USE_TZ=False):
        jobs.remember.schedule("unrelated")
        wait_idle()
    assert jobs.values() == ["unrelated"]
