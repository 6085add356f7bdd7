"""The one way into raincheck: ``schedule(job)`` decides where a job goes.

In order: a ``capture()`` in progress records it; ``RAINCHECK_IMMEDIATE`` runs it
at once; ``RAINCHECK_TASKS_BACKEND`` replaces it with a job that enqueues it on
that Tasks backend; then it joins its request's buffer, or, outside a request,
is handed off at once. ``@raincheck`` functions, ``RaincheckBackend`` and
``capture()`` all come through here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final

from raincheck import conf, signals
from raincheck.announce import announce
from raincheck.buffers import request_buffer
from raincheck.handoff import hand_off
from raincheck.jobs import Job, call


class DirectPath:
    """Whether a plain job may skip ``schedule()`` and go straight to its buffer.

    ``open`` is True only while no capture is in progress and the settings are
    loaded, valid, and neither IMMEDIATE, nor routed to a Tasks backend, nor
    ``DEBUG`` (which checks every job's arguments at ``.schedule()``), and no
    ``job_scheduled`` receiver is connected (it must see every job). A
    settings change closes it; ``refresh_direct_path()`` decides it again, on
    the next ``schedule()`` and when a capture starts or ends.
    """

    open = False


direct_path: Final = DirectPath()
# What each capture() in progress records a job with; the innermost last.
_captures: list[Callable[[Job], None]] = []


def schedule(job: Job, *, unique_key: object = None) -> None:
    """Capture, run, route, buffer or hand off ``job``.

    ``unique_key``: within one request, a second job with an equal key is
    dropped silently (``@raincheck(unique=True)``).
    """
    settings = conf.get()
    if not direct_path.open:
        refresh_direct_path()
    if settings.debug:
        # Wrong arguments would otherwise show only when the job runs, after
        # the response, in a log. The direct path is closed under DEBUG, so
        # this costs nothing in production.
        check = getattr(job[0], "check_arguments", None)
        if check is not None:
            check(job[1], job[2])
    if signals.job_scheduled.receivers:
        announce(job, settings, capturing=bool(_captures), unique_key=unique_key)
    if _captures:
        _captures[-1](job)
        return
    if settings.immediate:
        call(job)
        return
    if settings.tasks_backend is not None and job[0].routable:
        # Imported here: Django's Tasks framework is needed only when used.
        from raincheck.tasks.routing import routed

        # Checked now, so a job the backend cannot take fails in the view.
        job = routed(job, settings.tasks_backend)
    buffer = request_buffer()
    if buffer is None:
        hand_off([job])
    elif unique_key is None:
        buffer.append(job)
    else:
        buffer.add_once(job, unique_key)


def refresh_direct_path() -> None:
    try:
        settings = conf.get()
    except Exception:
        # Not configured, or invalid: schedule() reports it, every time.
        direct_path.open = False
        return
    # A job_scheduled receiver (the debug toolbar panel) must see every job.
    direct_path.open = not signals.job_scheduled.receivers and not (
        _captures or settings.immediate or settings.tasks_backend is not None or settings.debug
    )


def capturing() -> bool:
    """Whether a ``capture()`` records jobs now (``raincheck.tasks.handle`` asks)."""
    return bool(_captures)


def start_capture(record: Callable[[Job], None]) -> None:
    """Give jobs to ``record`` instead of running them, until ``stop_capture(record)``."""
    _captures.append(record)
    refresh_direct_path()


def stop_capture(record: Callable[[Job], None]) -> None:
    del _captures[next(i for i in reversed(range(len(_captures))) if _captures[i] is record)]
    refresh_direct_path()


def _on_setting_changed() -> None:
    # Not refreshed here: settings may be half-changed (override_settings sends
    # one signal per setting); the next schedule() refreshes.
    direct_path.open = False


conf.on_change(_on_setting_changed)
