"""Fixtures that start real servers and always stop them; failing tests get their logs."""

from __future__ import annotations

import signal
from collections.abc import Callable, Generator, Iterator, Sequence
from pathlib import Path

import pytest

from tests.servers.catalog import SERVERS, ServerSpec, params
from tests.servers.harness import Server, start_server

SERVERS_KEY = pytest.StashKey[list[Server]]()

# One pool thread: a job handed off too early would run before a later one, not beside it.
ONE_WORKER = {"RAINCHECK_TEST_MAX_WORKERS": "1"}


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


@pytest.fixture(scope="package", params=params(SERVERS))
def shared_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """One running server per configuration of the catalog, shared by the tests that
    only make requests to it (one pool thread; every test uses tags of its own)."""
    spec: ServerSpec = request.param
    started: list[Server] = []
    try:
        yield start_server(
            spec.id,
            spec.argv,
            tmp_path_factory.mktemp(spec.id),
            env={**ONE_WORKER, **spec.env},
            stop_signal=spec.stop_signal,
            on_start=started.append,
        )
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def server_spec(shared_server: Server) -> ServerSpec:
    """The catalog entry of ``shared_server``."""
    return next(spec for spec in SERVERS if spec.id == shared_server.name)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(
    item: pytest.Item, call: pytest.CallInfo[None]
) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    """Attach every server's command line, events and log to a failing test's report."""
    report = yield
    if report.failed:
        servers: list[Server] = [*item.stash.get(SERVERS_KEY, [])]
        funcargs: dict[str, object] = getattr(item, "funcargs", {})
        servers += [value for value in funcargs.values() if isinstance(value, Server)]
        for server in servers:
            report.sections.append((f"server {server.name}", server.report("")))
    return report
