"""WSGI entry point for uWSGI prefork: the master has a pool when it forks its workers.

uWSGI imports this once, in the master, then forks the workers with C
``fork()``, which runs none of Python's ``os.register_at_fork`` hooks: each
worker must notice by itself that the pool it inherited is not its own. The
jobs scheduled here run in the master; the module then waits until they have
finished, because a pool thread that is *running* when uWSGI forks can leave a
worker hung (see docs/servers.rst).
"""

from __future__ import annotations

from raincheck.testing import wait_idle
from tests.servers.project.jobs import mark, nap
from tests.servers.project.wsgi import application

IMPORT_TAGS = ("import-slow", "import-queued")

nap.schedule(IMPORT_TAGS[0], 0.2)
mark.schedule(IMPORT_TAGS[1])
wait_idle(10.0)

__all__ = ["application"]
