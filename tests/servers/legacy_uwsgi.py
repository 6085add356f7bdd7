"""A virtualenv with uWSGI 2.0.26, the last release in which Python threads can be off.

Since uWSGI 2.0.27 threads are always enabled (``--enable-threads`` is a no-op
and nothing turns them off), so the only way to see raincheck under a uWSGI
without threads (``raincheck.W001``) is an older uWSGI. Its wheels exist for
CPython 3.10-3.12 only: the environment is built with one of those, whatever
runs pytest, with the same Django and asgiref as this one (raincheck itself
comes from the repository through ``PYTHONPATH``), and kept in pytest's cache
directory. Building it needs the package index; without it the tests skip.

Pytest runs that share the cache directory (the version matrix runs two at a
time, and two pairs can need the same environment) build it one at a time,
under a lock: the second finds it ready instead of deleting it under the first.
"""

from __future__ import annotations

import glob
import importlib.metadata
import os
import shutil
import subprocess
import sys
from pathlib import Path

LEGACY_UWSGI = "2.0.26"
PYTHONS = ("3.12", "3.11", "3.10")
INSTALL_TIMEOUT = 600.0


class Unavailable(Exception):
    """The environment cannot be built here; the message says why."""


def _python_below_3_13() -> str:
    if sys.version_info < (3, 13):
        return sys.executable
    pyenv_root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    for minor in PYTHONS:
        found = shutil.which(f"python{minor}")
        builds = sorted(glob.glob(f"{pyenv_root}/versions/{minor}.*/bin/python{minor}"))
        for candidate in [*builds[::-1], *([found] if found else [])]:
            check = subprocess.run(
                [candidate, "-c", "import venv, ensurepip"], capture_output=True, check=False
            )
            if check.returncode == 0:
                return candidate
    raise Unavailable(
        f"uWSGI {LEGACY_UWSGI} has wheels for CPython 3.10-3.12 only, and no such "
        f"interpreter (python3.12, python3.11, python3.10, or pyenv's) was found"
    )


def legacy_uwsgi_python(cache_dir: Path) -> str:
    """The ``python`` of a virtualenv with pyuwsgi 2.0.26 and this Django; built once."""
    import fcntl  # POSIX only, as uWSGI is

    with (cache_dir / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _build(cache_dir)


def _build(cache_dir: Path) -> str:
    python = _python_below_3_13()
    version = subprocess.run(
        [python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    requirements = [
        f"pyuwsgi=={LEGACY_UWSGI}",
        f"django=={importlib.metadata.version('django')}",
        f"asgiref=={importlib.metadata.version('asgiref')}",
        f"typing-extensions=={importlib.metadata.version('typing-extensions')}",
    ]
    name = f"py{version}-" + "-".join(r.replace("==", "") for r in requirements)
    venv = cache_dir / name
    venv_python = venv / "bin" / "python"
    done = venv / ".installed"
    if done.exists():
        return str(venv_python)
    shutil.rmtree(venv, ignore_errors=True)
    steps = [
        [python, "-m", "venv", str(venv)],
        [
            str(venv_python),
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "--only-binary=:all:",
            *requirements,
        ],
    ]
    for step in steps:
        try:
            result = subprocess.run(
                step, capture_output=True, text=True, timeout=INSTALL_TIMEOUT, check=False
            )
        except subprocess.TimeoutExpired as exc:
            raise Unavailable(f"{' '.join(step)} took over {INSTALL_TIMEOUT} s") from exc
        if result.returncode != 0:
            shutil.rmtree(venv, ignore_errors=True)
            tail = (result.stderr or result.stdout).strip().splitlines()[-3:]
            raise Unavailable(f"could not build the uWSGI {LEGACY_UWSGI} environment: {tail}")
    done.touch()
    return str(venv_python)
