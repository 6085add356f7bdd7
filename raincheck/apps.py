"""The app: registers the system checks and the exit hooks that servers need."""

from __future__ import annotations

import signal

from django.apps import AppConfig
from django.core import checks


class RaincheckConfig(AppConfig):
    name = "raincheck"
    verbose_name = "raincheck"

    def ready(self) -> None:
        # Importing raincheck (this package) wired the request_started and
        # request_finished receivers and the exit drain. No thread starts here:
        # the pool is created on first use, after any fork the server does
        # (docs/design.rst, "Fork").
        from raincheck import conf, servers, stopsignals
        from raincheck.checks import (
            check_on_success_middleware,
            check_runtime,
            check_settings,
            check_tasks_backend,
        )
        from raincheck.drain import drain_for_exit, exit_drain_running_here
        from raincheck.process import holds_no_lock, note_stop

        checks.register(check_settings)
        checks.register(check_runtime)
        checks.register(check_on_success_middleware)
        checks.register(check_tasks_backend)
        servers.attach_uwsgi_exit_hook(drain_for_exit)
        servers.attach_celery_exit_hook(drain_for_exit)
        # ready() runs while the server imports the app. A handler installed
        # before ours (gunicorn's workers) is chained to after the drain; one
        # installed after (uvicorn's CLI) re-raises SIGTERM into ours when done.
        drain_on_sigterm = not conf.problems() and conf.get().drain_on_sigterm
        if drain_on_sigterm:
            stopsignals.install_sigterm_drain(
                drain_for_exit, can_drain_here=holds_no_lock, ending_here=exit_drain_running_here
            )
        # A stop the server handles itself starts the deadline (raincheck.process).
        stops = [signal.SIGINT] if drain_on_sigterm else [signal.SIGTERM, signal.SIGINT]
        # uvicorn's SIGTERM also drains, once uvicorn has stopped (raincheck.servers).
        watched = stopsignals.watch_stop_signals(note_stop, stops, drain=drain_for_exit)
        unseen = [signum for signum in stops if signum not in watched]
        if unseen:
            stopsignals.look_again_at_the_first_asgi_request(
                note_stop, unseen, drain=drain_for_exit
            )
        if not conf.problems() and conf.get().tasks_backend is not None:
            _make_routed_tasks()


def _make_routed_tasks() -> None:
    # Backends that look Tasks up by name (Celery's) need them made before a
    # worker's first message, not at a .schedule() that never runs there.
    from raincheck.decorators import DECORATED, ON_DECORATE

    try:
        from raincheck.tasks.routing import make_tasks_up_front
    except ImportError:
        return  # no Tasks framework: raincheck.E012
    make_tasks_up_front(DECORATED, ON_DECORATE)
