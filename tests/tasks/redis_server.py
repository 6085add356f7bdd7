"""A throwaway Redis for the worker tests: its own port on 127.0.0.1, no
persistence unless asked, stopped by PID."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

from tests.servers.harness import free_port
from tests.tasks.processes import DEADLINE, POLL, wait_until

REDIS_SERVER = shutil.which("redis-server")


class RedisServer:
    """``redis-server`` on a free port; ``url`` is ``redis://127.0.0.1:PORT``."""

    def __init__(self, data_dir: Path) -> None:
        if REDIS_SERVER is None:
            raise RuntimeError("redis-server is not installed")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}"
        self.log = data_dir / "redis.log"
        # The queue must outlive a worker, not Redis itself: nothing goes to disk.
        options = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        options += ["--appendonly", "no", "--dir", str(data_dir)]
        with self.log.open("wb") as log:
            self.popen = subprocess.Popen(
                [REDIS_SERVER, *options],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        wait_until(self._answers, f"redis-server on port {self.port}")

    def _answers(self) -> bool:
        if self.popen.poll() is not None:
            raise AssertionError(f"redis-server exited:\n{self.log.read_text()[-2000:]}")
        import redis

        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=POLL * 10)
        try:
            return bool(client.ping())
        except redis.ConnectionError:
            return False
        finally:
            client.close()

    def stop(self) -> None:
        if self.popen.poll() is not None:
            return
        os.kill(self.popen.pid, signal.SIGTERM)
        try:
            self.popen.wait(timeout=DEADLINE)
        except subprocess.TimeoutExpired:
            os.kill(self.popen.pid, signal.SIGKILL)
            self.popen.wait(timeout=5)
