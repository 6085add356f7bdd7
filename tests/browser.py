"""Headless Chromium over the DevTools protocol: started on 127.0.0.1, stopped by its PID.

Shared by ``make docs-check`` (docs/sitecheck.py) and the browser test of the
debug toolbar panel (tests/toolbar/test_browser.py). Chromium runs with a fresh
profile in a temporary directory, in a process group of its own, and picks its
own free DevTools port (``--remote-debugging-port=0``); every wait here polls
with a deadline.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import websocket

CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-address=127.0.0.1",
    # Port 0: Chromium picks a free port and writes it to DevToolsActivePort.
    "--remote-debugging-port=0",
)
TIMEOUT = 30.0
POLL_INTERVAL = 0.05


class DevTools:
    """A minimal DevTools protocol client over the browser's WebSocket."""

    def __init__(self, url: str) -> None:
        # No Origin header: Chromium refuses WebSocket clients from other origins.
        self.ws = websocket.create_connection(url, timeout=TIMEOUT, suppress_origin=True)
        self.last_id = 0
        self.pending: list[dict[str, Any]] = []

    def call(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self.last_id += 1
        message: dict[str, Any] = {"id": self.last_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        self.ws.send(json.dumps(message))
        while True:
            reply = json.loads(self.ws.recv())
            if reply.get("id") == self.last_id:
                if "error" in reply:
                    raise RuntimeError(f"{method}: {reply['error']}")
                result: dict[str, Any] = reply.get("result", {})
                return result
            self.pending.append(reply)

    def wait_for(self, event: str, session: str) -> None:
        deadline = time.monotonic() + TIMEOUT
        while True:
            for i, message in enumerate(self.pending):
                if message.get("method") == event and message.get("sessionId") == session:
                    del self.pending[i]
                    return
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {event} within {TIMEOUT} s")
            self.pending.append(json.loads(self.ws.recv()))

    def new_page(self, width: int, height: int) -> str:
        """A new tab of ``width`` x ``height`` CSS pixels; its session id."""
        target = self.call("Target.createTarget", url="about:blank")["targetId"]
        session: str = self.call("Target.attachToTarget", targetId=target, flatten=True)[
            "sessionId"
        ]
        self.call("Page.enable", session)
        self.viewport(session, width, height)
        return session

    def viewport(self, session: str, width: int, height: int) -> None:
        self.call(
            "Emulation.setDeviceMetricsOverride",
            session,
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=width < 600,
        )

    def navigate(self, session: str, url: str) -> None:
        """Open ``url`` and wait for its load event."""
        self.call("Page.navigate", session, url=url)
        self.wait_for("Page.loadEventFired", session)

    def evaluate(self, session: str, expression: str) -> Any:
        """The value of a JavaScript expression (a promise is awaited); raises on an exception."""
        reply = self.call(
            "Runtime.evaluate",
            session,
            expression=expression,
            awaitPromise=True,
            returnByValue=True,
        )
        if "exceptionDetails" in reply:
            raise RuntimeError(f"{expression[:80]!r}: {reply['exceptionDetails']}")
        return reply["result"].get("value")

    def poll(self, session: str, expression: str, what: str) -> Any:
        """Evaluate ``expression`` until its value is truthy; that value."""
        deadline = time.monotonic() + TIMEOUT
        while True:
            value = self.evaluate(session, expression)
            if value:
                return value
            if time.monotonic() > deadline:
                raise TimeoutError(f"{what}: not within {TIMEOUT} s")
            time.sleep(POLL_INTERVAL)

    def click(self, session: str, x: float, y: float) -> None:
        """A left click at page coordinates, as a mouse would make it."""
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            self.call(
                "Input.dispatchMouseEvent",
                session,
                type=kind,
                x=x,
                y=y,
                button="none" if kind == "mouseMoved" else "left",
                clickCount=0 if kind == "mouseMoved" else 1,
            )

    def screenshot(self, session: str, clip: dict[str, float] | None = None) -> bytes:
        """A PNG of the viewport, or of ``clip`` (x, y, width, height in CSS pixels)."""
        params: dict[str, Any] = {"format": "png"}
        if clip is not None:
            params.update(clip={**clip, "scale": 1}, captureBeyondViewport=True)
        return base64.b64decode(self.call("Page.captureScreenshot", session, **params)["data"])

    def close(self) -> None:
        self.ws.close()


def find_chromium() -> str | None:
    """The Chromium (or Chrome) on PATH, if any."""
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return None


@contextlib.contextmanager
def chromium(executable: str) -> Iterator[DevTools]:
    """Start headless Chromium with a fresh profile; stop it by its PID."""
    with tempfile.TemporaryDirectory(prefix="raincheck-chromium-") as profile:
        log = Path(profile, "chromium.log").open("w")  # noqa: SIM115 (closed below)
        process = subprocess.Popen(
            [executable, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # Its own process group, so that its helper processes go with it.
            start_new_session=True,
        )
        try:
            active = Path(profile, "DevToolsActivePort")
            deadline = time.monotonic() + TIMEOUT
            while not (active.exists() and len(active.read_text().splitlines()) >= 2):
                if process.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    output = Path(profile, "chromium.log").read_text()[-2000:]
                    raise RuntimeError(f"Chromium did not start:\n{output}")
                time.sleep(0.1)
            port, path = active.read_text().splitlines()[:2]
            client = DevTools(f"ws://127.0.0.1:{port}{path}")
            try:
                yield client
            finally:
                client.close()
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            # The renderers exit with the browser; any that did not are in its group.
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            log.close()
