"""What raincheck must know about the server it runs under.

- uWSGI with Python threads disabled never runs the pool's threads (W001): jobs
  then run in the caller, after the response, instead of being lost.
- uvicorn, waitress, ``runserver`` and the workers of ``hypercorn --workers N``
  end the process on SIGTERM without running Python's exit hooks (W002).
  ``RAINCHECK_DRAIN_ON_SIGTERM`` installs a SIGTERM handler that drains the
  pool first and then hands the signal on.
- A server that stops gracefully on a signal (gunicorn's workers on SIGTERM)
  finishes its requests before the process exits: raincheck
  notes the signal on its way to the server, so that the stop's deadline runs
  from there.
- uWSGI does not run ``atexit`` hooks on every worker exit, so the drain is also
  attached to ``uwsgi.atexit``.
- Celery's prefork pool ends its child processes with ``os._exit()`` right
  after it sends ``worker_process_shutdown``: the drain is connected to it.
- RQ ends its work horse with ``os._exit()`` right after the job, with no hook
  at all: there jobs run in the caller.
"""

from __future__ import annotations

import _thread
import importlib
import logging
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType, ModuleType
from typing import Any, Final

from raincheck import greenlets

logger = logging.getLogger("raincheck")

# Modules whose presence means this process serves requests with a server that
# dies on SIGTERM without running atexit hooks (docs/servers.rst, "SIGTERM").
SIGTERM_FATAL_SERVERS: Final = {
    "uvicorn": "uvicorn",
    "waitress": "waitress",
    "django.core.management.commands.runserver": "runserver",
}

W001_MESSAGE: Final = (
    "uWSGI runs with Python threads disabled, so raincheck's pool threads would never "
    "run: jobs run in the request's thread after the response instead."
)
W001_HINT: Final = "Start uWSGI with --enable-threads (the default since uWSGI 2.0.27)."
W002_HINT: Final = (
    "Set RAINCHECK_DRAIN_ON_SIGTERM = True so queued jobs finish on SIGTERM, "
    "or stop the server with SIGINT."
)
# A worker of a supervisor gets SIGTERM whatever signal the supervisor got: SIGINT
# to `uvicorn --workers N` (its multiprocessing children), gunicorn's UvicornWorker.
W002_WORKER_HINT: Final = (
    "Set RAINCHECK_DRAIN_ON_SIGTERM = True so queued jobs finish on SIGTERM: this "
    "process is a worker its supervisor stops with SIGTERM, whatever signal it got."
)


def uwsgi_module() -> ModuleType | None:
    """The ``uwsgi`` module, which exists only inside a uWSGI process."""
    try:
        return importlib.import_module("uwsgi")
    except ImportError:
        return None


def threads_disabled() -> bool:
    uwsgi = uwsgi_module()
    return uwsgi is not None and not getattr(uwsgi, "has_threads", True)


def in_rq_work_horse() -> bool:
    """Whether this is a process RQ started to run one job (its work horse).

    RQ ends it with ``os._exit()`` as soon as the job returns, with no hook
    before (rq/worker/base.py, ``main_work_horse``): jobs queued on a pool there
    would be lost, so they run in the caller. RQ sets ``RQ_JOB_ID`` in it.
    """
    return "rq" in sys.modules and "RQ_JOB_ID" in os.environ


def jobs_run_in_caller() -> bool:
    """Whether this process can have no pool or loop: their threads would never
    run (uWSGI without threads), or the process ends as its job returns (RQ's
    work horse). The caller runs the jobs instead."""
    return threads_disabled() or in_rq_work_horse()


def sigterm_fatal_server() -> str | None:
    """The name of the SIGTERM-fatal server this process runs under, if any."""
    for module, name in SIGTERM_FATAL_SERVERS.items():
        if module in sys.modules:
            return name
    if "hypercorn" in sys.modules and multiprocessing.parent_process() is not None:
        # A worker of `hypercorn --workers N` handles no signal: once one worker
        # has stopped, hypercorn ends the others with SIGTERM (hypercorn/run.py),
        # maybe in the middle of their exit drain (docs/servers.rst).
        return "hypercorn --workers"
    return None


def w002_hint() -> str:
    """W002's advice: SIGINT only helps where it reaches this process."""
    supervised = multiprocessing.parent_process() is not None or "gunicorn" in sys.modules
    return W002_WORKER_HINT if supervised else W002_HINT


def w002_message(server: str) -> str:
    return (
        f"{server} ends the process on SIGTERM without running exit hooks, so jobs still "
        "queued would be lost."
    )


_warned: set[str] = set()


def warn_once_at_first_hand_off(drain_on_sigterm: bool) -> None:
    """Log W001/W002 once per process: servers do not run system checks."""
    if threads_disabled() and "W001" not in _warned:
        _warned.add("W001")
        logger.warning("raincheck.W001: %s %s", W001_MESSAGE, W001_HINT)
    server = sigterm_fatal_server()
    if server is not None and not drain_on_sigterm and "W002" not in _warned:
        _warned.add("W002")
        logger.warning("raincheck.W002: %s %s", w002_message(server), w002_hint())


Handler = Callable[[int, FrameType | None], Any] | int | None


def install_sigterm_drain(
    drain: Callable[[], None],
    can_drain_here: Callable[[], bool],
    ending_here: Callable[[], bool],
) -> bool:
    """Drain on SIGTERM, then hand the signal to whatever handled it before.

    The handler runs on the main thread between two bytecodes, maybe while that
    thread holds a lock the drain needs (``can_drain_here()`` says whether it
    does). Then it must not wait: it starts the drain on a thread of its own,
    returns so the main thread can go on and let go of the lock, and takes the
    signal again once the drain is over (docs/design.rst, "SIGTERM"). Under
    gevent it runs in the event loop's hub, which must never wait: the drain
    runs in a greenlet, which then hands the signal on itself. A SIGTERM that
    interrupts the exit drain itself (``ending_here()``) lets it finish: the
    process is ending already, after the drain.

    Only the main thread may install signal handlers; elsewhere this does
    nothing and returns False.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    previous: Handler = signal.getsignal(signal.SIGTERM)
    main = threading.get_ident()
    state = {"draining": False, "drained": False}

    def pass_on(signum: int, frame: FrameType | None) -> None:
        if callable(previous):
            previous(signum, frame)
        elif previous != signal.SIG_IGN:
            # The default action: end the process, as it would have without us.
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)

    def drain_then(hand_on: Callable[[], None]) -> None:  # on a thread (or greenlet) of its own
        try:
            drain()
        finally:
            state["drained"] = True
            hand_on()

    def drain_elsewhere(hand_on: Callable[[], None]) -> None:
        state["draining"] = True
        try:
            _thread.start_new_thread(drain_then, (hand_on,))
        except RuntimeError:
            # The interpreter is shutting down (no thread starts then, Python
            # 3.12 and later): the exit drain runs anyway, before it ends.
            state["draining"] = False

    def on_sigterm(signum: int, frame: FrameType | None) -> None:
        if state["drained"]:
            pass_on(signum, frame)
        elif state["draining"] or ending_here():
            # A second SIGTERM, or one that came during the exit drain: a drain
            # is under way, its deadline bounds the wait, and the process ends
            # after it. Ending the process now would lose its jobs.
            return
        elif greenlets.patched():
            # Under gevent the handler runs in the hub, which may not wait for
            # anything: the drain gets a greenlet of its own (gevent's patched
            # _thread), as gunicorn's gevent worker does for its own quit.
            drain_elsewhere(lambda: pass_on(signum, None))
        elif can_drain_here():
            state["draining"] = True
            drain()
            state["drained"] = True
            pass_on(signum, frame)
        else:
            # _thread, not threading: Thread.start() takes threading's own
            # locks, which the interrupted main thread may hold too.
            drain_elsewhere(lambda: signal.pthread_kill(main, signal.SIGTERM))

    _install(signal.SIGTERM, on_sigterm, previous)
    return True


def watch_stop_signals(note: Callable[[], None], signums: list[signal.Signals]) -> list[int]:
    """Call ``note`` as each of ``signums`` arrives, before the server's own handler.

    A server that stops gracefully on a signal may have installed its handler
    before it loaded the app (gunicorn's worker, ``Worker.init_process``;
    uvicorn's worker processes, ``Server.serve``): then ready() finds it, and
    puts ``note`` in front of it, so that ``RAINCHECK_SHUTDOWN_TIMEOUT`` counts
    from the signal (docs/design.rst, "The stop's deadline"). A signal without a
    handler in Python (the default action, ignored, or the ``KeyboardInterrupt``
    of SIGINT) is left alone: the process dies at once, or reaches its exit,
    where the deadline begins anyway.
    Returns the signals watched; none off the main thread.
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    watched: list[int] = []
    for signum in signums:
        previous = signal.getsignal(signum)
        if not callable(previous) or previous is signal.default_int_handler:
            continue

        def on_signal(
            sig: int, frame: FrameType | None, handler: Callable[..., Any] = previous
        ) -> None:
            note()
            handler(sig, frame)

        _install(signum, on_signal, previous)
        watched.append(signum)
    return watched


def _install(
    signum: int, handler: Callable[[int, FrameType | None], Any], previous: Handler
) -> None:
    signal.signal(signum, handler)
    if signum == signal.SIGTERM and getattr(previous, "__module__", "").startswith("gunicorn."):
        # gunicorn keeps SIGTERM from interrupting its active requests' system
        # calls (gunicorn/workers/base.py, init_signals), and signal.signal()
        # has just made it interrupt them again (Python's docs, siginterrupt).
        signal.siginterrupt(signum, False)


def attach_uwsgi_exit_hook(drain: Callable[[], None]) -> None:
    """Run the drain from uWSGI's own exit hook too, chaining any existing one."""
    uwsgi = uwsgi_module()
    if uwsgi is None:
        return
    previous = getattr(uwsgi, "atexit", None)

    def on_exit() -> None:
        drain()
        if callable(previous):
            previous()

    uwsgi.atexit = on_exit  # type: ignore[attr-defined]


def attach_celery_exit_hook(drain: Callable[[], None]) -> None:
    """Drain as a Celery prefork child ends, where Celery is already imported.

    billiard's pool worker sends Celery's ``worker_process_shutdown`` and then
    calls ``os._exit()`` (billiard/pool.py, ``Worker._do_exit``): no exit hook of
    Python's or multiprocessing's runs, so jobs that its tasks scheduled would
    be lost. raincheck never imports Celery itself.
    """
    if "celery" not in sys.modules:
        return
    try:
        from celery.signals import worker_process_shutdown
    except ImportError:
        return

    def on_shutdown(**_: Any) -> None:
        drain()

    worker_process_shutdown.connect(on_shutdown, weak=False, dispatch_uid="raincheck.drain")
