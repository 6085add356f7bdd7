"""How a thread notices that it now runs in a child process that a job forked.

Every ``os.fork()`` child increments ``GENERATION[0]``: a worker that reads a
different value after a job than before it is the forking thread, in the child
(reading a list is cheaper than asking the kernel for ``os.getpid()``).
"""

from __future__ import annotations

import os
from typing import Final

GENERATION: Final = [0]


def _count_fork() -> None:
    GENERATION[0] += 1


os.register_at_fork(after_in_child=_count_fork)
