"""Isolation for every test: no pool, job, capture, hook or counter outlives its test."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest
from django.dispatch import Signal

import raincheck
from raincheck import process, scheduling
from raincheck.buffers import current_buffer
from raincheck.stats import Counters
from raincheck.steps import Worker
from tests.app import jobs, views

if TYPE_CHECKING:
    from tests.servers.postgres import Cluster

Received = list[dict[str, Any]]


@pytest.fixture(scope="module")
def postgres() -> Iterator[Cluster]:
    """A PostgreSQL cluster of its own (skipped, with the reason, where none can run)."""
    from tests.servers.postgres import Unavailable, throwaway_cluster

    try:
        with throwaway_cluster() as cluster:
            yield cluster
    except Unavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(autouse=True)
def _isolate_raincheck() -> Iterator[None]:
    """Start each test without a pool and with zeroed counters; stop its pool after it."""
    _reset_state()
    yield
    for gate in jobs.Gate.opened:
        gate.release.set()
    jobs.Gate.opened.clear()
    raincheck.shutdown(timeout=5)
    # drain() returns once nothing runs; the workers leave (and close their
    # database connections) just after. Wait for them so that thread counts and
    # connections seen by the next test are its own.
    for thread in threading.enumerate():
        if isinstance(thread, Worker) or thread.name.startswith(
            ("raincheck-sync-", "raincheck-loop")
        ):
            thread.join(timeout=5)
    _reset_state()


def _reset_state() -> None:
    current_buffer.set(None)
    scheduling._captures.clear()
    scheduling.direct_path.open = False
    state = process.current()
    state.exiting = False
    state.exit_drainer = state.exit_deadline = state.stop_signalled = None
    state.exit_drained.clear()
    if state.pool is None:
        state.counters = Counters()
    views.hooks.clear()
    with jobs.calls_lock:
        jobs.calls.clear()


@pytest.fixture
def received() -> Iterator[Callable[[Signal], Received]]:
    """``received(signal)`` returns a list that fills with the kwargs of each send."""
    connected: list[tuple[Signal, Callable[..., None]]] = []

    def connect(signal: Signal) -> Received:
        sent: Received = []

        def receiver(**kwargs: Any) -> None:
            sent.append(kwargs)

        signal.connect(receiver, weak=False)
        connected.append((signal, receiver))
        return sent

    yield connect
    for signal, receiver in connected:
        signal.disconnect(receiver)
