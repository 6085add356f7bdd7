"""raincheck's signal handlers, each put in front of the one a server installed.

- With ``RAINCHECK_DRAIN_ON_SIGTERM``, a SIGTERM handler drains the pool, then
  hands the signal on (for servers that die on SIGTERM: raincheck.servers).
- A web server that stops gracefully on a signal (gunicorn's workers on
  SIGTERM, uvicorn on SIGINT) finishes its requests in flight before the
  process exits: a handler notes the signal on its way, so that the stop's
  deadline runs from there (docs/design.rst, "The stop's deadline"). It is put
  in place as the app gets ready, or, for a server that installs its handlers
  after loading the app (uvicorn's single process), at the first ASGI request.
  On uvicorn's SIGTERM it also has the pool drained once uvicorn has stopped,
  before the signal ends the process (raincheck.servers).
"""

from __future__ import annotations

import _thread
import asyncio
import contextlib
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any, Final

from asgiref.sync import async_to_sync

from raincheck import greenlets
from raincheck.servers import drain_before_uvicorn_ends, note_uvicorns_handler

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


# Where the handlers of servers whose stop signal begins a graceful stop of the
# requests in flight are defined. A task worker's warm shutdown (Celery's) may
# first finish a task of minutes: its jobs still get the whole timeout after it.
REQUEST_SERVERS: Final = ("gunicorn.", "uvicorn.")


def watch_stop_signals(
    note: Callable[[], None],
    signums: list[signal.Signals],
    servers: tuple[str, ...] = REQUEST_SERVERS,
    drain: Callable[[], None] | None = None,
) -> list[int]:
    """Call ``note`` as each of ``signums`` arrives, before the server's own handler.

    A server that stops gracefully on a signal may have installed its handler
    before it loaded the app (gunicorn's worker, ``Worker.init_process``;
    uvicorn's worker processes, ``Server.serve``): then ready() finds it, and
    puts ``note`` in front of it, so that ``RAINCHECK_SHUTDOWN_TIMEOUT`` counts
    from the signal (docs/design.rst, "The stop's deadline"). Only a handler of
    one of the ``servers`` (module prefixes) is watched. A signal without a
    handler in Python (the default action, ignored, or the ``KeyboardInterrupt``
    of SIGINT) is left alone: the process dies at once, or reaches its exit,
    where the deadline begins anyway. Returns the signals watched; none off the
    main thread.

    ``drain``: run once uvicorn has stopped on SIGTERM, before the signal ends the
    process (raincheck.servers, ``drain_before_uvicorn_ends``).
    """
    if threading.current_thread() is not threading.main_thread():
        return []
    watched: list[int] = []
    for signum in signums:
        previous = signal.getsignal(signum)
        if not callable(previous) or not _defined_in(previous, servers):
            continue

        def on_signal(
            sig: int, frame: FrameType | None, handler: Callable[..., Any] = previous
        ) -> None:
            note()
            handler(sig, frame)
            if sig == signal.SIGTERM and drain is not None:
                drain_before_uvicorn_ends(handler, drain)

        if signum == signal.SIGTERM and drain is not None:
            note_uvicorns_handler(previous)  # so W002 knows, before any signal
        _install(signum, on_signal, previous)
        watched.append(signum)
    return watched


def _defined_in(handler: Handler, modules: tuple[str, ...]) -> bool:
    return (getattr(handler, "__module__", None) or "").startswith(modules)


def _install(
    signum: int, handler: Callable[[int, FrameType | None], Any], previous: Handler
) -> None:
    signal.signal(signum, handler)
    if signum == signal.SIGTERM and _defined_in(previous, ("gunicorn.",)):
        # gunicorn keeps SIGTERM from interrupting its active requests' system
        # calls (gunicorn/workers/base.py, init_signals), and signal.signal()
        # has just made it interrupt them again (Python's docs, siginterrupt).
        signal.siginterrupt(signum, False)


# What ready() found no server's handler for yet, to look again at the first
# ASGI request (look_again_from_the_loop).
_second_look: list[Callable[[], object]] = []


def look_again_at_the_first_asgi_request(
    note: Callable[[], None],
    signums: list[signal.Signals],
    servers: tuple[str, ...] = REQUEST_SERVERS,
    drain: Callable[[], None] | None = None,
) -> None:
    """uvicorn's single process installs its handlers only after it has loaded
    the app (``uvicorn/main.py``, ``run()``), then serves every request on the
    main thread's event loop: there, at the first request, they can be watched."""
    _second_look.append(lambda: watch_stop_signals(note, signums, servers, drain))


def look_again_from_the_loop() -> None:
    """Called as an ASGI request starts, on a thread of asgiref's ``SyncToAsync``;
    the first call looks from the event loop's thread (signal handlers may only
    be installed from the main thread: a loop on another thread watches none)."""
    if not _second_look:
        return
    try:
        look = _second_look.pop()
    except IndexError:  # another request's thread took it meanwhile
        return

    if asyncio._get_running_loop() is not None:
        look()  # request_started sent on the loop's own thread
        return

    async def on_the_loop() -> None:
        look()

    # Never a reason to fail the request: at worst the stop is timed from the
    # exit, as where no handler is watched (a thread with no loop to go to).
    with contextlib.suppress(RuntimeError):
        async_to_sync(on_the_loop)()
