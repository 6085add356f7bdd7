"""Fixtures that start real servers and always stop them; failing tests get their logs."""

from __future__ import annotations

import signal
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

import pytest

from tests.servers.harness import Server, start_server

SERVERS_KEY = pytest.StashKey[list[Server]]()


class ServerFactory:
    """Starts servers for one test, each in its own sub-directory of ``tmp_path``."""

    def __init__(self, tmp_path: Path, started: list[Server]) -> None:
        self.tmp_path = tmp_path
        self.started = started

    def __call__(
        self,
        name: str,
        argv: Callable[[int], Sequence[str]],
        *,
        env: dict[str, str] | None = None,
        stop_signal: signal.Signals = signal.SIGTERM,
    ) -> Server:
        workdir = self.tmp_path / f"{len(self.started)}-{name}"
        return start_server(
            name, argv, workdir, env=env, stop_signal=stop_signal, on_start=self.started.append
        )


@pytest.fixture
def start(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[ServerFactory]:
    """Start servers with ``start(name, argv, env=...)``; they are stopped after the test."""
    started: list[Server] = []
    request.node.stash[SERVERS_KEY] = started
    try:
        yield ServerFactory(tmp_path, started)
    finally:
        for server in started:
            server.stop()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach every server's command line, events and log to a failing test's report."""
    report = yield
    if report.failed:
        for server in item.stash.get(SERVERS_KEY, []):
            report.sections.append((f"server {server.name}", server.report("")))
    return report
