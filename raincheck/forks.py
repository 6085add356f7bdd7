"""How a thread notices that it now runs in a child process that a job forked.

Every ``os.fork()`` child increments ``generation()``: a worker that reads a
different value after a job than before it is the forking thread, in the child
(reading an int is cheaper than asking the kernel for ``os.getpid()``).
"""

from __future__ import annotations

import os

_generation = [0]


def generation() -> int:
    return _generation[0]


def _count_fork() -> None:
    _generation[0] += 1


os.register_at_fork(after_in_child=_count_fork)
