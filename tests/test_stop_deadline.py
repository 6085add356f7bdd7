"""A stop's deadline runs from the stop signal that the server handles (docs/design.rst,
"The stop's deadline").

A server's graceful stop (gunicorn's worker on SIGTERM) finishes the requests
in flight before the process exits, and under overload those may be waiting
for room in a full queue. raincheck notes the signal on its way to the
server's handler, and from then on nothing of raincheck's waits past
``signal + RAINCHECK_SHUTDOWN_TIMEOUT``: not a request waiting for room, not the
exit drain. ``tests/servers/test_shutdown.py`` stops a real gunicorn that way.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import threading
import time
from collections.abc import Iterator
from types import FrameType
from typing import Any

import pytest
from django.test import override_settings

import raincheck
from raincheck import admission, process, stopsignals
from raincheck.drain import drain_for_exit
from raincheck.testing import wait_idle
from tests.app import jobs
from tests.app.helpers import current_pool, hold_the_worker, in_thread, spy_on_room
from tests.app.jobs import HOLD_LIMIT
from tests.test_admission import FULL, asgi_get, fill_the_queue, records_the_gate

# Longer than any test may take: a wait that is not cut short by the stop hangs.
FOREVER = 3600.0
OVERLOADED = {
    "RAINCHECK_MAX_WORKERS": 1,
    "RAINCHECK_MAX_QUEUE": 1,
    "RAINCHECK_BACKPRESSURE": "block",
    "RAINCHECK_BLOCK_TIMEOUT": FOREVER,
}


def signalled_long_ago() -> None:
    """The stop signal came a whole shutdown timeout ago: its deadline has passed."""
    process.current().stop_signalled = time.monotonic() - FOREVER


@override_settings(**OVERLOADED, RAINCHECK_SHUTDOWN_TIMEOUT=0.2)
def test_a_stop_ends_a_wait_for_room_at_its_deadline_and_names_the_job_it_drops(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A request waiting for room when the stop signal comes waits no longer than the
    stop's deadline; its job, which never found room, is dropped and named (running it
    in the caller would hold the exit), while the pool goes on with its queue."""
    gate = hold_the_worker()
    jobs.remember.schedule("queued")
    waiting = spy_on_room(current_pool())
    request_end = in_thread(lambda: jobs.remember.schedule("no room"))
    assert waiting.wait(HOLD_LIMIT)

    with caplog.at_level(logging.WARNING, logger="raincheck"):
        process.note_stop()
        request_end()  # returns once the deadline passes, not after BLOCK_TIMEOUT

    gate.release.set()
    wait_idle()
    assert jobs.values() == ["held", "queued"]
    stats = raincheck.stats()
    assert (stats.scheduled, stats.succeeded, stats.dropped, stats.ran_in_caller) == (3, 2, 1, 0)
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "1 job(s) did not finish within the 0.2 s shutdown timeout" in warning
    assert "tests.app.jobs.remember" in warning


@override_settings(**OVERLOADED, RAINCHECK_SHUTDOWN_TIMEOUT=FOREVER)
def test_a_request_that_ends_after_the_deadline_does_not_wait_for_room() -> None:
    gate = hold_the_worker()
    jobs.remember.schedule("queued")
    signalled_long_ago()
    jobs.remember.schedule("no room")  # would wait FOREVER for the gate
    gate.release.set()
    wait_idle()
    assert jobs.values() == ["held", "queued"]
    assert raincheck.stats().dropped == 1


@override_settings(**OVERLOADED, RAINCHECK_SHUTDOWN_TIMEOUT=FOREVER)
def test_the_exit_drain_keeps_to_the_deadline_the_stop_signal_set(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The exit drain's deadline is the signal's, not a whole timeout from the exit:
    here it has passed, so the drain drops the queue at once and says so, naming the
    timeout as set."""
    gate = hold_the_worker()
    jobs.remember.schedule("queued")
    signalled_long_ago()
    with caplog.at_level(logging.WARNING, logger="raincheck"):
        drain_for_exit()  # would wait FOREVER for the gate
    gate.release.set()
    assert "queued" not in jobs.values()
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(
        f"2 job(s) did not finish within the {FOREVER:.1f} s shutdown timeout" in w
        for w in warnings
    ), warnings


@override_settings(**{**FULL, "RAINCHECK_BLOCK_TIMEOUT": FOREVER, "RAINCHECK_SHUTDOWN_TIMEOUT": 0})
def test_an_asgi_request_does_not_wait_for_room_past_the_deadline() -> None:
    gate = fill_the_queue()
    records_the_gate(gate)
    process.note_stop()
    assert asgi_get("/hook/record/") == 200  # would wait FOREVER for the gate
    assert "view ran, released: False" in jobs.values()


@pytest.fixture
def sigterm_handled_by_a_server() -> Iterator[list[int]]:
    """A Python handler for SIGTERM, as a server installs before it loads the app."""
    received: list[int] = []

    def server_handler(signum: int, frame: FrameType | None) -> None:
        received.append(signum)

    before = signal.signal(signal.SIGTERM, server_handler)
    try:
        yield received
    finally:
        signal.signal(signal.SIGTERM, before)


def test_a_stop_signal_is_noted_then_handed_to_the_servers_handler(
    sigterm_handled_by_a_server: list[int],
) -> None:
    noted: list[bool] = []
    watched = stopsignals.watch_stop_signals(
        lambda: noted.append(not sigterm_handled_by_a_server), [signal.SIGTERM], (__name__,)
    )
    assert watched == [signal.SIGTERM]
    signal.raise_signal(signal.SIGTERM)
    assert noted == [True]  # before the server's handler ran
    assert sigterm_handled_by_a_server == [signal.SIGTERM]


def test_signals_without_a_handler_in_python_are_left_alone() -> None:
    """SIGINT's KeyboardInterrupt, SIGTERM's default action, an ignored signal: the
    process then ends at once or reaches its exit, where the deadline begins anyway."""
    before = {signum: signal.getsignal(signum) for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        cases: list[dict[signal.Signals, Any]] = [
            {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL},
            {signal.SIGINT: signal.SIG_IGN, signal.SIGTERM: signal.SIG_IGN},
        ]
        for handlers in cases:
            for signum, handler in handlers.items():
                signal.signal(signum, handler)
            signums = [signal.SIGINT, signal.SIGTERM]
            assert stopsignals.watch_stop_signals(lambda: None, signums, (__name__,)) == []
            assert {signum: signal.getsignal(signum) for signum in signums} == handlers
    finally:
        for signum, handler in before.items():
            signal.signal(signum, handler)


def test_only_a_request_servers_handler_is_watched(
    sigterm_handled_by_a_server: list[int],
) -> None:
    """Not a task worker's, say: its warm shutdown may first finish a long task, and
    the jobs still get the whole timeout after it."""
    assert stopsignals.watch_stop_signals(lambda: None, [signal.SIGTERM]) == []
    assert stopsignals.watch_stop_signals(lambda: None, [signal.SIGTERM], ("gunicorn.",)) == []


def test_only_the_main_thread_watches(sigterm_handled_by_a_server: list[int]) -> None:
    watched: list[int] = []
    thread = threading.Thread(
        target=lambda: watched.extend(
            stopsignals.watch_stop_signals(lambda: None, [signal.SIGTERM], (__name__,))
        )
    )
    thread.start()
    thread.join(HOLD_LIMIT)
    assert watched == []


def test_a_servers_handler_installed_after_the_app_loaded_is_watched_from_the_loop(
    sigterm_handled_by_a_server: list[int],
) -> None:
    """uvicorn's single process loads the app, then installs its handlers and serves
    on the main thread's loop: the first ASGI request looks again from there."""
    noted: list[bool] = []
    records_the_gate(jobs.Gate())
    stopsignals.look_again_at_the_first_asgi_request(
        lambda: noted.append(True), [signal.SIGTERM], (__name__,)
    )
    try:
        assert asgi_get("/hook/record/") == 200  # its loop runs on this, the main thread
        assert not stopsignals._second_look  # once: later requests only find it done
    finally:
        stopsignals._second_look.clear()
    signal.raise_signal(signal.SIGTERM)
    assert noted == [True]
    assert sigterm_handled_by_a_server == [signal.SIGTERM]


def test_the_second_look_never_fails_whatever_thread_it_runs_on(
    sigterm_handled_by_a_server: list[int],
) -> None:
    """On an event loop's own thread it looks from there; on a thread with no loop
    to go to, it gives up quietly: a request never fails for it."""
    for _ in range(2):
        stopsignals.look_again_at_the_first_asgi_request(lambda: None, [signal.SIGTERM])

    async def on_a_loop() -> None:
        stopsignals.look_again_from_the_loop()

    asyncio.run(on_a_loop())
    stopsignals.look_again_from_the_loop()  # no loop: AsyncToSync would have one made
    assert not stopsignals._second_look


@override_settings(**{**FULL, "RAINCHECK_MAX_QUEUE": 1})
def test_a_queue_of_one_job_is_full_with_one_job_not_with_none() -> None:
    """Nine tenths of a small queue rounds down: with none queued, an ASGI request
    waited for room all the same."""
    gate = hold_the_worker()
    assert not admission._full(1)
    jobs.remember.schedule("queued")
    assert admission._full(1)
    gate.release.set()
