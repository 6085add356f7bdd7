"""Start a real server on 127.0.0.1, talk to it, read its events, stop it.

Each server runs as a subprocess of the current interpreter, in its own session,
with its output in a log file and a directory of its own for events and
markers. It is started as ``python -m gunicorn``/``python -m uvicorn`` would be,
through a two-line launcher that first restores SIGINT's default handler: a
process started in the background from a non-interactive shell inherits SIGINT
as ignored (docs/servers.rst), and a SIGINT test would then prove nothing. (The
launcher does in the child what ``preexec_fn`` would, without running Python
code between fork and exec, which is unsafe in a multi-threaded pytest process.)

uWSGI runs the same way, from the ``pyuwsgi`` wheel: its launcher calls
``pyuwsgi.run()``. An argument ``{workdir}`` in any command line stands for the
server's own directory (uWSGI's master FIFO lives there).

Every wait here is for another process, and polls with a deadline.
"""

from __future__ import annotations

import contextlib
import http.client
import importlib.metadata
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.servers.project import events
from tests.servers.project.events import DIR_ENV, EVENTS_FILE, MARKERS_DIR

REPO_ROOT = Path(__file__).resolve().parents[2]
SETTINGS_MODULE = "tests.servers.project.settings"
WSGI_APP = "tests.servers.project.wsgi:application"
ASGI_APP = "tests.servers.project.asgi:application"

READY_TIMEOUT = 20.0
STOP_TIMEOUT = 30.0
KILL_TIMEOUT = 5.0
POLL_INTERVAL = 0.02
LOG_TAIL = 6000

Event = dict[str, Any]


class ServerError(AssertionError):
    """A server did not do what a test waited for; the message carries its log."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# ``python -c LAUNCHER module args...`` behaves like ``python -m module args...``
# with SIGINT handled as in an interactive process (KeyboardInterrupt).
LAUNCHER = (
    "import runpy, signal, sys; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "del sys.argv[0]; "
    "runpy.run_module(sys.argv[0], run_name='__main__', alter_sys=True)"
)


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args`` with SIGINT restored."""
    return [sys.executable, "-c", LAUNCHER, module, *args]


# ``python -c UWSGI_LAUNCHER args...`` behaves like the ``uwsgi`` script of pyuwsgi.
UWSGI_LAUNCHER = (
    "import signal, sys; "
    "signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from pyuwsgi import run; "
    "sys.argv[0] = 'uwsgi'; "
    "sys.exit(run())"
)
WORKDIR = "{workdir}"
UWSGI_FIFO = "master.fifo"


def _gunicorn_has_control_socket() -> bool:
    # gunicorn 25 added a control socket, by default at one path per user, where
    # servers started in parallel would collide; older versions lack the option.
    major = importlib.metadata.version("gunicorn").split(".")[0]
    return major.isdigit() and int(major) >= 25


def gunicorn_argv(*options: str, app: str = WSGI_APP) -> Callable[[int], list[str]]:
    """The command line of a gunicorn server with ``options``, as a function of its port."""

    def argv(port: int) -> list[str]:
        return python_module(
            "gunicorn",
            "--bind",
            f"127.0.0.1:{port}",
            *(["--no-control-socket"] if _gunicorn_has_control_socket() else []),
            "--log-level",
            "info",
            *options,
            app,
        )

    return argv


def worker_options(worker: str, threads: int = 4) -> list[str]:
    """gunicorn options for a worker class; ``--threads`` only for gthread.

    (gunicorn quietly turns ``-k sync --threads N`` with N > 1 into gthread.)
    """
    if worker == "gthread":
        return ["-k", worker, "--threads", str(threads)]
    return ["-k", worker]


def uvicorn_argv(*options: str, app: str = ASGI_APP) -> Callable[[int], list[str]]:
    """The command line of a uvicorn server with ``options``, as a function of its port."""

    def argv(port: int) -> list[str]:
        return python_module(
            "uvicorn",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            # Django does not implement the lifespan protocol.
            "--lifespan",
            "off",
            "--log-level",
            "info",
            *options,
            app,
        )

    return argv


def runserver_argv(*options: str) -> Callable[[int], list[str]]:
    """``manage.py runserver`` (threaded, without the autoreloader), as a function of its port."""

    def argv(port: int) -> list[str]:
        return python_module("django", "runserver", f"127.0.0.1:{port}", "--noreload", *options)

    return argv


def daphne_argv(*options: str, app: str = ASGI_APP) -> Callable[[int], list[str]]:
    """The command line of a daphne server with ``options``, as a function of its port."""

    def argv(port: int) -> list[str]:
        return python_module("daphne", "-b", "127.0.0.1", "-p", str(port), *options, app)

    return argv


def granian_argv(*options: str, app: str = ASGI_APP) -> Callable[[int], list[str]]:
    """The command line of a granian server with ``options``, as a function of its port."""

    def argv(port: int) -> list[str]:
        return python_module("granian", "--host", "127.0.0.1", "--port", str(port), *options, app)

    return argv


def hypercorn_argv(*options: str, app: str = ASGI_APP) -> Callable[[int], list[str]]:
    """The command line of a hypercorn server with ``options``, as a function of its port."""

    def argv(port: int) -> list[str]:
        return python_module("hypercorn", "--bind", f"127.0.0.1:{port}", *options, app)

    return argv


def waitress_argv(*options: str, app: str = WSGI_APP) -> Callable[[int], list[str]]:
    """The command line of a waitress server with ``options``, as a function of its port."""

    def argv(port: int) -> list[str]:
        return python_module("waitress", f"--listen=127.0.0.1:{port}", *options, app)

    return argv


def uwsgi_argv(
    *options: str, app: str = WSGI_APP, python: str = sys.executable
) -> Callable[[int], list[str]]:
    """A uWSGI master (pyuwsgi, run by ``python``) with ``options``, as a function of its port.

    ``--binary-path`` makes a reload re-execute this interpreter (a virtualenv's
    ``python``, not the one it links to); the master FIFO (``Server.uwsgi``)
    allows a graceful shutdown, which no signal gives.
    """

    def argv(port: int) -> list[str]:
        return [
            python,
            "-c",
            UWSGI_LAUNCHER,
            "--master",
            "--http-socket",
            f"127.0.0.1:{port}",
            "--module",
            app,
            "--need-app",
            "--binary-path",
            python,
            "--master-fifo",
            f"{WORKDIR}/{UWSGI_FIFO}",
            *options,
        ]

    return argv


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Server:
    """One running server process (and, through its session, its workers)."""

    name: str
    workdir: Path
    argv: list[str]
    port: int
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals
    stopped: bool = field(default=False)

    # -- files ------------------------------------------------------------------

    @property
    def log_path(self) -> Path:
        return self.workdir / "server.log"

    @property
    def events_path(self) -> Path:
        return self.workdir / EVENTS_FILE

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def events(self) -> list[Event]:
        return events.read(self.events_path)

    def note(self, tag: str, event: str, **extra: Any) -> None:
        """Append an event from the test process itself (its pid tells it apart)."""
        events.append(self.events_path, tag, event, **extra)

    def command(self) -> str:
        """The command line, with the launcher shown as the ``-m`` it stands for."""
        argv = self.argv
        if argv[1:3] == ["-c", LAUNCHER]:
            argv = ["python", "-m", *argv[3:]]
        elif argv[1:3] == ["-c", UWSGI_LAUNCHER]:
            argv = ["uwsgi", *argv[3:]]
        return shlex.join(argv)

    def report(self, message: str) -> str:
        """``message`` with this server's command line, events and log tail, for a failure."""
        log = self.log()
        if len(log) > LOG_TAIL:
            log = "[...]\n" + log[-LOG_TAIL:]
        lines = "\n".join(json.dumps(e, sort_keys=True) for e in self.events())
        return (
            f"{message}\n--- {self.name}: {self.command()}\n--- events:\n{lines}\n--- log:\n{log}"
        )

    # -- HTTP ---------------------------------------------------------------------

    def get(self, path: str, *, timeout: float = 20.0) -> Reply:
        """GET ``path`` on a new connection (``Connection: close``)."""
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path, headers={"Connection": "close"})
            response = conn.getresponse()
            return Reply(response.status, response.read())
        finally:
            conn.close()

    def get_json(self, path: str, *, timeout: float = 20.0) -> Any:
        """GET ``path``, require a 200, return its JSON body."""
        reply = self.get(path, timeout=timeout)
        if reply.status != 200:
            raise ServerError(self.report(f"GET {path} answered {reply.status}: {reply.body!r}"))
        return reply.json()

    # -- waiting --------------------------------------------------------------------

    def wait_ready(self, timeout: float = READY_TIMEOUT) -> None:
        """Poll ``/ping/`` until it answers 200; fail if the process exits first."""
        deadline = time.monotonic() + timeout
        while True:
            if self.process.poll() is not None:
                raise ServerError(self.report(f"exited with {self.process.returncode} at start"))
            with contextlib.suppress(OSError, http.client.HTTPException):
                if self.get("/ping/", timeout=1.0).status == 200:
                    return
            if time.monotonic() > deadline:
                raise ServerError(self.report(f"not ready after {timeout} s"))
            time.sleep(POLL_INTERVAL)

    def wait_for_events(
        self,
        predicate: Callable[[list[Event]], bool],
        what: str,
        timeout: float = 15.0,
    ) -> list[Event]:
        """Poll the events file until ``predicate(events)`` holds; return the events."""
        deadline = time.monotonic() + timeout
        while True:
            seen = self.events()
            if predicate(seen):
                return seen
            if time.monotonic() > deadline:
                raise ServerError(self.report(f"timed out after {timeout} s waiting for {what}"))
            time.sleep(POLL_INTERVAL)

    def wait_for_log(self, *needles: str, timeout: float = 15.0) -> str:
        """Poll the log until it contains every one of ``needles``; return it."""
        deadline = time.monotonic() + timeout
        while True:
            log = self.log()
            if all(needle in log for needle in needles):
                return log
            if time.monotonic() > deadline:
                raise ServerError(self.report(f"the log never contained all of {needles!r}"))
            time.sleep(POLL_INTERVAL)

    # -- stopping ---------------------------------------------------------------------

    def send_signal(self, sig: signal.Signals) -> None:
        """Send ``sig`` to the server's main process (gunicorn's master)."""
        self.process.send_signal(sig)

    def uwsgi(self, command: str) -> None:
        """Write ``command`` to uWSGI's master FIFO (``q``: graceful shutdown)."""
        # O_NONBLOCK: fail at once (ENXIO) rather than hang if the master is not reading.
        fd = os.open(self.workdir / UWSGI_FIFO, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, command.encode())
        finally:
            os.close(fd)

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` seconds for the main process; its exit code or None."""
        try:
            return self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def stop(self) -> None:
        """Stop gracefully (``stop_signal``), then SIGKILL the whole session after a bound."""
        if self.stopped:
            return
        self.stopped = True
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(self.stop_signal)
            if self.wait_exit(STOP_TIMEOUT) is None:
                self._kill_session()
                self.wait_exit(KILL_TIMEOUT)
        # Workers left behind by a master that died must not outlive the test.
        self._kill_session()

    def _kill_session(self) -> None:
        # start_new_session=True made the server's pid its process group id.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.process.pid, signal.SIGKILL)


def start_server(
    name: str,
    argv: Callable[[int], Sequence[str]],
    workdir: Path,
    *,
    env: dict[str, str] | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
    on_start: Callable[[Server], None] = lambda server: None,
) -> Server:
    """Start a server on a free port and wait until it answers.

    ``on_start`` is called as soon as the process exists, so that the caller
    stops it even when it never becomes ready.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / MARKERS_DIR).mkdir(exist_ok=True)
    child_env = dict(os.environ)
    child_env.pop("PYTHONWARNINGS", None)
    child_env.update(
        {
            "DJANGO_SETTINGS_MODULE": SETTINGS_MODULE,
            "PYTHONPATH": os.pathsep.join(
                [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
            ),
            "PYTHONUNBUFFERED": "1",
            DIR_ENV: str(workdir),
            **(env or {}),
        }
    )
    for attempt in range(3):
        port = free_port()
        command = [arg.replace(WORKDIR, str(workdir)) for arg in argv(port)]
        with (workdir / "server.log").open("ab") as log:
            log.write(f"$ {' '.join(command)}\n".encode())
            log.flush()
            process = subprocess.Popen(
                command,
                cwd=REPO_ROOT,
                env=child_env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server(name, workdir, command, port, process, stop_signal)
        on_start(server)
        try:
            server.wait_ready()
        except ServerError:
            # Another process may have taken the port between bind and listen.
            if attempt < 2 and "in use" in server.log():
                server.stop()
                continue
            raise
        return server
    raise AssertionError("unreachable")  # pragma: no cover


def count(seen: list[Event], tag: str, event: str) -> int:
    return sum(1 for e in seen if e["tag"] == tag and e["event"] == event)


def only(seen: list[Event], tag: str, event: str) -> Event:
    """The one event ``(tag, event)``; fails if there are none or several."""
    matches = [e for e in seen if e["tag"] == tag and e["event"] == event]
    if len(matches) != 1:
        raise AssertionError(f"expected exactly one {event!r} of {tag!r}, got {matches}")
    return matches[0]


def position(seen: list[Event], tag: str, event: str) -> int:
    """The index of the one event ``(tag, event)`` in the file's order."""
    return seen.index(only(seen, tag, event))


def process_gone(pid: int) -> bool:
    """Whether no process ``pid`` exists any more (a worker its master has reaped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def wait_until(condition: Callable[[], bool], what: str, server: Server, timeout: float) -> None:
    """Poll ``condition`` until it holds; fail with ``server``'s report after ``timeout``."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ServerError(server.report(f"timed out after {timeout} s waiting for {what}"))
        time.sleep(POLL_INTERVAL)
