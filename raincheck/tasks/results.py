"""The task results ``RaincheckBackend.get_result()`` can find in this process."""

from __future__ import annotations

import threading
from collections import OrderedDict
from typing import Any, Final

from raincheck.tasks.framework import TaskResult

# How many finished results get_result() can still find in this process; older
# ones are forgotten. Unfinished results are always kept (their jobs hold them).
RESULT_LIMIT: Final = 1_000


class ResultStore:
    """This process's task results: every unfinished one, and the ``limit`` most
    recently finished (older finished results are forgotten)."""

    def __init__(self, limit: int = RESULT_LIMIT) -> None:
        self.limit = limit
        self._lock = threading.Lock()
        self._unfinished: dict[str, TaskResult[Any, Any]] = {}
        self._finished: OrderedDict[str, TaskResult[Any, Any]] = OrderedDict()

    def add(self, result: TaskResult[Any, Any]) -> None:
        with self._lock:
            self._unfinished[result.id] = result

    def finish(self, result: TaskResult[Any, Any]) -> None:
        with self._lock:
            self._unfinished.pop(result.id, None)
            self._finished[result.id] = result
            self._finished.move_to_end(result.id)
            while len(self._finished) > self.limit:
                self._finished.popitem(last=False)

    def get(self, result_id: str) -> TaskResult[Any, Any] | None:
        with self._lock:
            return self._unfinished.get(result_id) or self._finished.get(result_id)

    def __len__(self) -> int:
        with self._lock:
            return len(self._unfinished) + len(self._finished)
