"""uvicorn's SIGTERM: raincheck drains once uvicorn has stopped, before the signal
ends the process (raincheck.servers; the real servers: tests/servers/test_sigterm.py).

A stand-in for ``uvicorn.server.Server`` keeps uvicorn out of ``sys.modules``,
where its presence alone is what W002 looks for.
"""

from __future__ import annotations

import signal
from types import FrameType

import pytest

from raincheck import servers
from raincheck.checks import check_runtime
from tests.test_checks import pretend_module


class Server:
    """What raincheck relies on of uvicorn's: ``handle_exit`` records the signal,
    which ``capture_signals`` raises again, last first, once the server has
    stopped and its handlers are back."""

    def __init__(self) -> None:
        self._captured_signals: list[int] = []

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        self._captured_signals.append(sig)

    def signals_to_raise_again(self) -> list[int]:
        return list(reversed(self._captured_signals))


Server.__module__ = "uvicorn.server"


@pytest.fixture(autouse=True)
def _no_uvicorn_seen(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers, "_uvicorn_drains_first", False)


def stopped_by(sig: int, drains: list[str]) -> Server:
    """A server that got ``sig``, with raincheck's watch in front of its handler."""
    server = Server()
    server.handle_exit(sig, None)
    if sig == signal.SIGTERM:
        servers.drain_before_uvicorn_ends(server.handle_exit, lambda: drains.append("drained"))
    return server


def test_the_sigterm_uvicorn_raises_again_drains_first_when_it_would_end_the_process() -> None:
    drains: list[str] = []
    server = stopped_by(signal.SIGTERM, drains)
    assert drains == []  # not while the server is still stopping
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    assert server.signals_to_raise_again() == [signal.SIGTERM]
    assert drains == ["drained"]


def test_no_drain_where_sigterm_will_not_end_the_process() -> None:
    """A handler of the program's own (or SIG_IGN) gets the signal instead: the
    process goes on, and its exit drains as usual."""
    drains: list[str] = []
    server = stopped_by(signal.SIGTERM, drains)
    previous = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        assert server.signals_to_raise_again() == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert drains == []


def test_sigint_and_other_handlers_are_left_alone() -> None:
    drains: list[str] = []
    server = stopped_by(signal.SIGINT, drains)
    assert type(server._captured_signals) is list
    server.signals_to_raise_again()

    def not_uvicorns(sig: int, frame: FrameType | None) -> None:
        pass

    servers.drain_before_uvicorn_ends(not_uvicorns, lambda: drains.append("drained"))
    assert drains == []


def test_w002_no_longer_names_uvicorn_once_its_sigterm_drains(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pretend_module(monkeypatch, "uvicorn")
    assert [w.id for w in check_runtime()] == ["raincheck.W002"]
    assert servers.note_uvicorns_handler(Server().handle_exit)
    assert check_runtime() == []
