"""raincheck.contrib.debug_toolbar.RaincheckPanel: each request's jobs, as the toolbar records it.

The panel runs here as django-debug-toolbar's middleware runs it (instrumentation
around the view, stats once the response exists), with a stand-in for the
toolbar's per-request storage; tests/toolbar/test_browser.py runs the real toolbar.
"""

from __future__ import annotations

import contextvars
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, cast

import django
import pytest
from asgiref.sync import async_to_sync, sync_to_async
from django.core.signals import request_finished, request_started
from django.http import HttpResponse
from django.test import RequestFactory, override_settings
from pytest_django import Settings as SettingsWrapper

from raincheck import scheduling, signals
from raincheck.testing import capture, wait_idle
from tests.toolbar import jobs

pytest.importorskip(
    "debug_toolbar",
    reason="needs django-debug-toolbar (the toolbar dependency group; Django >= 5.2)",
    exc_type=ImportError,
)

from raincheck.contrib.debug_toolbar import MAX_REPR, RaincheckPanel

if TYPE_CHECKING:
    from debug_toolbar.toolbar import DebugToolbar

TEMPLATES = [{"BACKEND": "django.template.backends.django.DjangoTemplates", "APP_DIRS": True}]


class Toolbar:
    """What a panel uses of django-debug-toolbar's ``DebugToolbar``: its per-request stats
    and a store, which here insists on JSON as the toolbar's own store does."""

    def __init__(self) -> None:
        self.request_id = "test"
        self.stats: dict[str, Any] = {}
        self.store = self

    def save_panel(self, request_id: str, panel_id: str, data: dict[str, Any]) -> None:
        json.dumps(data)


@pytest.fixture(autouse=True)
def _forget_calls() -> Iterator[None]:
    yield
    with jobs.calls_lock:
        jobs.calls.clear()


def needs_tasks() -> None:
    pytest.importorskip(
        "raincheck.tasks.framework",
        reason="needs django.tasks (Django >= 6.0) or the django-tasks backport",
        exc_type=ImportError,
    )


def new_panel() -> RaincheckPanel:
    return RaincheckPanel(cast("DebugToolbar", Toolbar()), lambda request: HttpResponse())


def stats(panel: RaincheckPanel) -> dict[str, Any]:
    """What the panel recorded for its request (django-debug-toolbar leaves it untyped)."""
    return cast("dict[str, Any]", panel.get_stats())  # type: ignore[no-untyped-call]


@contextmanager
def recorded(status: int = 200) -> Iterator[RaincheckPanel]:
    """One request, its view being the body of the ``with``, recorded by a panel."""
    panel = new_panel()
    request_started.send(sender=None)
    try:
        panel.enable_instrumentation()
        try:
            yield panel
        finally:
            panel.disable_instrumentation()
        panel.generate_stats(RequestFactory().get("/"), HttpResponse(status=status))
    finally:
        request_finished.send(sender=None)


def listed(panel: RaincheckPanel) -> list[dict[str, Any]]:
    return cast("list[dict[str, Any]]", stats(panel)["jobs"])


def test_lists_each_job_with_its_name_arguments_options_and_destination() -> None:
    """Every job the view scheduled is listed in order: dotted name, arguments, options,
    and where it goes once the response has been sent."""
    with recorded() as panel:
        jobs.send_welcome_email.schedule(42, subject="Hi")
        jobs.refresh_recommendations.schedule(7)
    assert [
        (job["name"], job["arguments"], job["options"], job["where"]) for job in listed(panel)
    ] == [
        (
            "tests.toolbar.jobs.send_welcome_email",
            ["42", "subject='Hi'"],
            [],
            "after the response, on the pool",
        ),
        (
            "tests.toolbar.jobs.refresh_recommendations",
            ["7"],
            ["on_success", "unique"],
            "after the response, on the pool",
        ),
    ]
    assert panel.nav_subtitle == "2 jobs scheduled"
    wait_idle()
    # Listing them changed nothing about the jobs themselves: both ran.
    assert sorted(jobs.calls) == [
        ("refresh_recommendations", (7,)),
        ("send_welcome_email", (42, "Hi")),
    ]


def test_plain_jobs_are_seen_although_the_direct_path_was_open() -> None:
    """While a request is recorded the direct path is closed, so a plain job goes through
    schedule() and is listed; once recording ends the path opens again."""
    scheduling.refresh_direct_path()
    assert scheduling.direct_path.open
    with recorded() as panel:
        assert not scheduling.direct_path.open
        jobs.send_welcome_email.schedule(1, subject="s")
    assert [job["name"] for job in listed(panel)] == ["tests.toolbar.jobs.send_welcome_email"]
    assert not signals.job_scheduled.receivers
    assert scheduling.direct_path.open


def test_cuts_each_argument_repr() -> None:
    """A huge argument is cut to a readable length; one whose repr() raises is named by its type."""

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    with recorded() as panel:
        jobs.index_document.schedule({"body": "x" * 10_000})
        jobs.index_document.schedule(Broken())  # type: ignore[arg-type]
    huge, broken = (job["arguments"][0] for job in listed(panel))
    assert len(huge) <= MAX_REPR
    assert huge.startswith("{'body': 'xxx")
    assert "..." in huge
    assert broken.startswith("<Broken instance at ")


def test_a_unique_duplicate_shows_as_dropped() -> None:
    """A second unique job with equal arguments is listed as dropped, the first as held."""
    with recorded() as panel:
        jobs.refresh_recommendations.schedule(3)
        jobs.refresh_recommendations.schedule(3)
    assert [job["where"] for job in listed(panel)] == [
        "after the response, on the pool",
        "dropped: an equal job is already scheduled (unique)",
    ]


def test_an_async_job_shows_as_going_to_the_event_loop() -> None:
    """An async job awaits on raincheck's event loop, not on a pool thread: the panel says so."""
    with recorded() as panel:
        jobs.ping_webhook.schedule("https://example.com/hook")
        jobs.send_welcome_email.schedule(1, subject="s")
    assert [job["where"] for job in listed(panel)] == [
        "after the response, on raincheck's event loop",
        "after the response, on the pool",
    ]
    wait_idle()
    assert ("ping_webhook", ("https://example.com/hook",)) in jobs.calls


def test_an_on_success_job_of_a_failed_response_shows_as_skipped() -> None:
    """An on_success job of a request that answered 500 is listed as skipped; others are not."""
    with recorded(status=500) as panel:
        jobs.refresh_recommendations.schedule(3)
        jobs.send_welcome_email.schedule(3, subject="s")
    assert [job["where"] for job in listed(panel)] == [
        "skipped: the response is a 500 (on_success)",
        "after the response, on the pool",
    ]


def test_immediate_and_captured_jobs_say_so(settings: SettingsWrapper) -> None:
    """A job run at once under RAINCHECK_IMMEDIATE, or recorded by capture(), is listed as such."""
    with recorded() as panel:
        with capture():
            jobs.send_welcome_email.schedule(1, subject="captured")
        settings.RAINCHECK_IMMEDIATE = True
        jobs.send_welcome_email.schedule(2, subject="immediate")
    assert [job["where"] for job in listed(panel)] == [
        "captured by raincheck.testing.capture()",
        "ran immediately (RAINCHECK_IMMEDIATE)",
    ]


def test_a_routed_job_names_its_tasks_backend(settings: SettingsWrapper) -> None:
    """Under RAINCHECK_TASKS_BACKEND the job is listed as routed to that backend's alias."""
    needs_tasks()
    dummy = "django.tasks" if django.VERSION >= (6, 0) else "django_tasks"
    settings.TASKS = {"outbox": {"BACKEND": f"{dummy}.backends.dummy.DummyBackend"}}
    settings.RAINCHECK_TASKS_BACKEND = "outbox"
    with recorded() as panel:
        jobs.send_welcome_email.schedule(5, subject="routed")
    (job,) = listed(panel)
    assert job["name"] == "tests.toolbar.jobs.send_welcome_email"
    assert job["where"] == "routed to Tasks backend 'outbox', enqueued after the response"


def test_a_raincheck_backend_task_shows_the_task_and_its_arguments(
    settings: SettingsWrapper,
) -> None:
    """A task enqueued on RaincheckBackend is listed under its own path, with its arguments."""
    needs_tasks()
    settings.TASKS = {"default": {"BACKEND": "raincheck.backends.RaincheckBackend"}}
    from tests.tasks.tasks import add

    with recorded() as panel:
        add.enqueue(2, b=3)
    (job,) = listed(panel)
    assert job["name"] == "tests.tasks.tasks.add"
    assert job["arguments"] == ["2", "b=3"]
    assert job["options"] == ["task on backend 'default'"]
    assert job["where"] == "after the response, on the pool"


def test_jobs_of_another_concurrent_request_are_not_recorded() -> None:
    """Two requests recorded at once on two threads each list only their own jobs."""
    both_recording = threading.Barrier(2, timeout=10)
    both_scheduled = threading.Barrier(2, timeout=10)
    panels: dict[str, RaincheckPanel] = {}
    errors: list[BaseException] = []

    def request(user: str) -> Callable[[], None]:
        def run() -> None:
            try:
                with recorded() as panel:
                    both_recording.wait()
                    jobs.send_welcome_email.schedule(0, subject=user)
                    both_scheduled.wait()
                panels[user] = panel
            except BaseException as exc:
                errors.append(exc)

        return run

    threads = [threading.Thread(target=request(user)) for user in ("alice", "bob")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(10)
    assert not errors
    for user in ("alice", "bob"):
        assert [job["arguments"] for job in listed(panels[user])] == [["0", f"subject={user!r}"]]


def test_a_job_scheduled_by_sync_code_an_async_view_awaits_is_recorded() -> None:
    """Under ASGI the view's sync code runs on another thread, in a copy of the request's
    context (sync_to_async): its jobs are the request's, and are listed."""

    async def view() -> None:
        await sync_to_async(jobs.send_welcome_email.schedule)(9, subject="async")

    with recorded() as panel:
        async_to_sync(view)()
    assert [job["arguments"] for job in listed(panel)] == [["9", "subject='async'"]]


def test_a_job_scheduled_from_a_copy_of_the_request_context_later_is_not_recorded() -> None:
    """A copy of the request's context used after the toolbar stopped recording (a job it
    scheduled, running later) adds nothing to that request's panel."""
    with recorded() as panel:
        later = contextvars.copy_context()
        jobs.send_welcome_email.schedule(1, subject="during")
    later.run(jobs.send_welcome_email.schedule, 2, subject="after")
    assert [job["arguments"][1] for job in listed(panel)] == ["subject='during'"]


def test_nothing_is_recorded_outside_a_recorded_request() -> None:
    """A job scheduled while no toolbar records goes nowhere near the panel's receiver."""
    panel = new_panel()
    jobs.send_welcome_email.schedule(1, subject="s")
    panel.generate_stats(RequestFactory().get("/"), HttpResponse())
    assert listed(panel) == []
    assert stats(panel)["stats"]["scheduled"] == 1


@override_settings(TEMPLATES=TEMPLATES)
def test_the_panel_shows_the_jobs_and_the_pool_counters() -> None:
    """The panel's HTML lists each job's name, arguments and destination, then the counters."""
    with recorded() as panel:
        jobs.send_welcome_email.schedule(42, subject="<b>Hi</b>")
    content = panel.content
    assert "tests.toolbar.jobs.send_welcome_email" in content
    assert "subject=&#x27;&lt;b&gt;Hi&lt;/b&gt;&#x27;" in content  # escaped, not markup
    assert "after the response, on the pool" in content
    assert "<th>ran_in_caller</th>" in content
