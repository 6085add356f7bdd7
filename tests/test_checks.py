"""System checks: one id per invalid setting, warnings about the server and options."""

from __future__ import annotations

import logging
import multiprocessing
import sys
import threading
import types
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.test import override_settings

from raincheck import servers
from raincheck.checks import check_on_success_middleware, check_runtime, check_settings
from raincheck.testing import wait_idle
from tests.app import jobs

INVALID = [
    ("RAINCHECK_MAX_WORKERS", 0, "raincheck.E001"),
    ("RAINCHECK_MAX_WORKERS", -3, "raincheck.E001"),
    ("RAINCHECK_MAX_WORKERS", "4", "raincheck.E001"),
    ("RAINCHECK_MAX_WORKERS", 2.0, "raincheck.E001"),
    ("RAINCHECK_MAX_WORKERS", True, "raincheck.E001"),
    ("RAINCHECK_MAX_WORKERS", None, "raincheck.E001"),
    ("RAINCHECK_MAX_QUEUE", -1, "raincheck.E002"),
    ("RAINCHECK_MAX_QUEUE", "100", "raincheck.E002"),
    ("RAINCHECK_MAX_QUEUE", 1.5, "raincheck.E002"),
    ("RAINCHECK_MAX_QUEUE", False, "raincheck.E002"),
    ("RAINCHECK_MAX_QUEUE", None, "raincheck.E002"),
    ("RAINCHECK_BACKPRESSURE", "wait", "raincheck.E003"),
    ("RAINCHECK_BACKPRESSURE", "BLOCK", "raincheck.E003"),
    ("RAINCHECK_BACKPRESSURE", None, "raincheck.E003"),
    ("RAINCHECK_BLOCK_TIMEOUT", -0.1, "raincheck.E004"),
    ("RAINCHECK_BLOCK_TIMEOUT", "5", "raincheck.E004"),
    ("RAINCHECK_BLOCK_TIMEOUT", float("nan"), "raincheck.E004"),
    ("RAINCHECK_BLOCK_TIMEOUT", True, "raincheck.E004"),
    ("RAINCHECK_BLOCK_TIMEOUT", None, "raincheck.E004"),
    ("RAINCHECK_SHUTDOWN_TIMEOUT", -1, "raincheck.E005"),
    ("RAINCHECK_SHUTDOWN_TIMEOUT", "10", "raincheck.E005"),
    ("RAINCHECK_SHUTDOWN_TIMEOUT", float("nan"), "raincheck.E005"),
    ("RAINCHECK_SHUTDOWN_TIMEOUT", False, "raincheck.E005"),
    ("RAINCHECK_RUN_ASYNC", 1, "raincheck.E006"),
    ("RAINCHECK_RUN_ASYNC", "False", "raincheck.E006"),
    ("RAINCHECK_RUN_ASYNC", None, "raincheck.E006"),
    ("RAINCHECK_IMMEDIATE", 0, "raincheck.E007"),
    ("RAINCHECK_IMMEDIATE", "True", "raincheck.E007"),
    ("RAINCHECK_DRAIN_ON_SIGTERM", 1, "raincheck.E008"),
    ("RAINCHECK_DRAIN_ON_SIGTERM", None, "raincheck.E008"),
    ("RAINCHECK_TASKS_BACKEND", "", "raincheck.E009"),
    ("RAINCHECK_TASKS_BACKEND", 42, "raincheck.E009"),
    ("RAINCHECK_TASKS_BACKEND", ["default"], "raincheck.E009"),
    ("RAINCHECK_SLOW_JOB_WARNING", 0, "raincheck.E010"),
    ("RAINCHECK_SLOW_JOB_WARNING", -1.0, "raincheck.E010"),
    ("RAINCHECK_SLOW_JOB_WARNING", "1", "raincheck.E010"),
    ("RAINCHECK_TASKS_ENQUEUE", "now", "raincheck.E013"),
    ("RAINCHECK_TASKS_ENQUEUE", None, "raincheck.E013"),
]

VALID = [
    ("RAINCHECK_MAX_WORKERS", 1),
    ("RAINCHECK_MAX_WORKERS", 64),
    ("RAINCHECK_MAX_QUEUE", 0),
    ("RAINCHECK_MAX_QUEUE", 10),
    ("RAINCHECK_BACKPRESSURE", "block"),
    ("RAINCHECK_BACKPRESSURE", "caller_runs"),
    ("RAINCHECK_BACKPRESSURE", "drop"),
    ("RAINCHECK_BACKPRESSURE", "drop_oldest"),
    ("RAINCHECK_BLOCK_TIMEOUT", 0),
    ("RAINCHECK_BLOCK_TIMEOUT", 2.5),
    ("RAINCHECK_SHUTDOWN_TIMEOUT", 0.0),
    ("RAINCHECK_SHUTDOWN_TIMEOUT", 30),
    ("RAINCHECK_RUN_ASYNC", False),
    ("RAINCHECK_IMMEDIATE", True),
    ("RAINCHECK_DRAIN_ON_SIGTERM", True),
    ("RAINCHECK_TASKS_BACKEND", None),
    ("RAINCHECK_SLOW_JOB_WARNING", None),
    ("RAINCHECK_SLOW_JOB_WARNING", 0.5),
    ("RAINCHECK_TASKS_ENQUEUE", "request_finished"),
    ("RAINCHECK_TASKS_ENQUEUE", "pool"),
]


def ids(messages: list[Any]) -> list[str]:
    return [message.id for message in messages]


def test_default_settings_pass() -> None:
    """With no RAINCHECK_* setting at all, there is nothing to report."""
    assert check_settings() == []


@pytest.mark.parametrize(("setting", "value", "check_id"), INVALID)
def test_invalid_setting_has_its_own_error(setting: str, value: object, check_id: str) -> None:
    """Each invalid value of each setting is reported under that setting's check id."""
    with override_settings(**{setting: value}):
        [error] = check_settings()
    assert error.id == check_id
    assert error.level == logging.ERROR
    assert setting in error.msg
    assert repr(value) in error.msg
    assert error.hint


@pytest.mark.parametrize(("setting", "value"), VALID)
def test_valid_setting_passes(setting: str, value: object) -> None:
    """Every documented kind of valid value is accepted."""
    with override_settings(**{setting: value}):
        assert check_settings() == []


def test_every_invalid_setting_is_reported() -> None:
    """Several invalid settings give one error each, not just the first."""
    with override_settings(RAINCHECK_MAX_WORKERS=0, RAINCHECK_BACKPRESSURE="nope"):
        assert ids(check_settings()) == ["raincheck.E001", "raincheck.E003"]


@override_settings(RAINCHECK_BACKPRESSURE="nope")
def test_manage_py_check_fails_on_an_invalid_setting() -> None:
    """``manage.py check`` fails, naming the check id, when a setting is invalid."""
    with pytest.raises(SystemCheckError, match=r"raincheck\.E003"):
        call_command("check")


def test_manage_py_check_passes_by_default() -> None:
    """``manage.py check`` passes with the test project's settings."""
    call_command("check")


# -- runtime warnings (W001, W002) --------------------------------------------


@pytest.fixture
def fresh_warnings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forget which warnings were already logged in this process."""
    monkeypatch.setattr(servers, "_warned", set())


def pretend_module(monkeypatch: pytest.MonkeyPatch, name: str, **attrs: object) -> None:
    module = types.ModuleType(name)
    for key, value in attrs.items():
        setattr(module, key, value)
    monkeypatch.setitem(sys.modules, name, module)


def test_no_runtime_warning_outside_special_servers() -> None:
    """Under pytest (no uWSGI, no SIGTERM-fatal server) nothing is reported."""
    assert check_runtime() == []


@pytest.mark.parametrize("server", ["uvicorn", "waitress"])
def test_sigterm_fatal_server_without_drain_is_w002(
    monkeypatch: pytest.MonkeyPatch, server: str
) -> None:
    """Running under a server that dies on SIGTERM warns W002 unless DRAIN_ON_SIGTERM is on."""
    pretend_module(monkeypatch, server)
    [warning] = check_runtime()
    assert warning.id == "raincheck.W002"
    assert server in warning.msg
    with override_settings(RAINCHECK_DRAIN_ON_SIGTERM=True):
        assert check_runtime() == []


@pytest.mark.parametrize("supervised", [False, True], ids=["one-process", "supervised-worker"])
def test_w002_advises_sigint_only_where_it_reaches_this_process(
    monkeypatch: pytest.MonkeyPatch, supervised: bool
) -> None:
    """``uvicorn --workers N`` stops each worker with SIGTERM whatever signal it got
    itself: there, stopping with SIGINT would still lose the jobs."""
    pretend_module(monkeypatch, "uvicorn")
    monkeypatch.delitem(sys.modules, "gunicorn", raising=False)
    parent = types.SimpleNamespace(name="MainProcess") if supervised else None
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: parent)
    [warning] = check_runtime()
    hint = warning.hint or ""
    assert "RAINCHECK_DRAIN_ON_SIGTERM = True" in hint
    assert ("SIGINT" in hint) is not supervised


@pytest.mark.usefixtures("fresh_warnings")
def test_w002_is_logged_once_at_the_first_hand_off(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Servers skip system checks, so W002 is also logged once when the pool starts."""
    pretend_module(monkeypatch, "uvicorn")
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        jobs.remember.schedule("first")
        wait_idle()
        jobs.remember.schedule("second")
        wait_idle()
    assert caplog.text.count("raincheck.W002") == 1
    assert jobs.values() == ["first", "second"]


@pytest.mark.usefixtures("fresh_warnings")
def test_uwsgi_without_threads_is_w001_and_jobs_run_in_the_caller(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Under uWSGI with threads disabled: W001, and jobs run in the caller, never lost."""
    pretend_module(monkeypatch, "uwsgi", has_threads=False)
    assert ids(check_runtime()) == ["raincheck.W001"]
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        jobs.remember.schedule("no threads")
    assert jobs.calls == [(threading.current_thread().name, "no threads")]
    assert "raincheck.W001" in caplog.text


def test_uwsgi_with_threads_is_fine(monkeypatch: pytest.MonkeyPatch) -> None:
    """uWSGI with threads enabled gets no warning."""
    pretend_module(monkeypatch, "uwsgi", has_threads=True)
    assert check_runtime() == []


# -- on_success without the middleware (W003) ---------------------------------


def test_on_success_without_middleware_is_w003() -> None:
    """``on_success=True`` jobs without RaincheckMiddleware warn W003, naming the jobs."""
    import tests.app.jobs  # noqa: F401 - defines an on_success job

    [warning] = check_on_success_middleware()
    assert warning.id == "raincheck.W003"
    assert "tests.app.jobs.remember_on_success" in warning.msg
    with override_settings(MIDDLEWARE=["raincheck.middleware.RaincheckMiddleware"]):
        assert check_on_success_middleware() == []
