"""How the demo's server side tells ``run.py`` what happened, and when.

Each event is one JSON line appended to the file named by ``RAINCHECK_DEMO_EVENTS``,
written with a single ``write()`` on a descriptor opened with ``O_APPEND``, so lines
from the gunicorn master, the request threads and the pool threads never interleave.
"""

from __future__ import annotations

import json
import os
import threading
import time
from typing import Any

ENV_VAR = "RAINCHECK_DEMO_EVENTS"


def emit(kind: str, **fields: Any) -> None:
    """Record that ``kind`` happened now, in this process and thread."""
    path = os.environ.get(ENV_VAR)
    if not path:
        return
    event = {
        "t": time.time(),
        "kind": kind,
        "pid": os.getpid(),
        "thread": threading.current_thread().name,
        **fields,
    }
    line = (json.dumps(event) + "\n").encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)
