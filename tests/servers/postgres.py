"""A throwaway PostgreSQL cluster for the tests: initdb in a temporary directory, a free
port on 127.0.0.1, trust authentication, stopped and deleted afterwards.

The server binaries are looked up on ``PATH`` and then where Debian's
``postgresql`` package puts them (``/usr/lib/postgresql/N/bin``); ``.ci/run``
installs that package when neither has them. PostgreSQL refuses to run as
root, so under root the cluster runs as the ``postgres`` user (created by that
package), or as a system user created for the purpose.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.servers.harness import free_port

DATABASE = "raincheck"
SUPERUSER = "postgres"
FALLBACK_OS_USER = "raincheck-pg"
START_TIMEOUT = 60


class Unavailable(Exception):
    """PostgreSQL cannot run here; the message says why."""


def server_binary(name: str) -> str | None:
    """``initdb``/``pg_ctl`` on PATH, else the newest Debian-packaged one."""
    found = shutil.which(name)
    if found:
        return found
    packaged = glob.glob(f"/usr/lib/postgresql/*/bin/{name}")
    packaged.sort(
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0
    )
    return packaged[-1] if packaged else None


def _os_user() -> str | None:
    """Who runs the cluster: None for ourselves, or a non-root user when we are root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", FALLBACK_OS_USER):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    useradd = shutil.which("useradd")
    if useradd is None:
        raise Unavailable("running as root, and there is no postgres user nor useradd")
    subprocess.run(
        [useradd, "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", FALLBACK_OS_USER],
        check=True,
        capture_output=True,
    )
    return FALLBACK_OS_USER


@dataclass(frozen=True)
class Cluster:
    port: int
    directory: Path

    host = "127.0.0.1"

    def conninfo(self, dbname: str = DATABASE, application_name: str = "raincheck-tests") -> str:
        return (
            f"host={self.host} port={self.port} user={SUPERUSER} dbname={dbname} "
            f"application_name={application_name}"
        )

    def django_database(self, **settings: Any) -> dict[str, Any]:
        """A ``DATABASES["default"]`` for this cluster; ``settings`` add or override keys."""
        return {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": DATABASE,
            "USER": SUPERUSER,
            "HOST": self.host,
            "PORT": str(self.port),
            **settings,
        }

    def log(self) -> str:
        try:
            return (self.directory / "postgres.log").read_text(errors="replace")[-4000:]
        except OSError:
            return ""


@contextlib.contextmanager
def throwaway_cluster() -> Iterator[Cluster]:
    """Start a cluster with a ``raincheck`` database; stop and delete it afterwards."""
    initdb, pg_ctl = server_binary("initdb"), server_binary("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise Unavailable(
            "PostgreSQL server binaries (initdb, pg_ctl) not found on PATH or in "
            "/usr/lib/postgresql/*/bin: install PostgreSQL (apt-get install postgresql)"
        )
    try:
        import psycopg
    except ImportError as exc:
        raise Unavailable("psycopg is not installed (it is in the test dependency group)") from exc

    user = _os_user()
    prefix = ["runuser", "-u", user, "--"] if user else []
    directory = Path(tempfile.mkdtemp(prefix="raincheck-pg-"))
    data = directory / "data"
    if user:
        shutil.chown(directory, user)

    def run(*argv: str) -> None:
        result = subprocess.run(
            [*prefix, *argv], capture_output=True, text=True, timeout=START_TIMEOUT, check=False
        )
        if result.returncode != 0:
            raise Unavailable(f"{Path(argv[0]).name} failed: {result.stdout}{result.stderr}")

    try:
        run(initdb, "-D", str(data), "-U", SUPERUSER, "-A", "trust", "-E", "UTF8", "--no-sync")
        for _ in range(3):
            port = free_port()
            options = (
                f"-p {port} -k {directory} -c listen_addresses=127.0.0.1 "
                "-c fsync=off -c max_connections=50"
            )
            try:
                run(pg_ctl, "-D", str(data), "-l", str(directory / "postgres.log"),
                    "-o", options, "-w", "-t", str(START_TIMEOUT), "start")  # fmt: skip
                break
            except Unavailable:
                if "could not bind" not in Cluster(port, directory).log():
                    raise
        else:
            raise Unavailable("PostgreSQL could not bind a free port three times")
        cluster = Cluster(port, directory)
        try:
            with psycopg.connect(cluster.conninfo("postgres"), autocommit=True) as conn:
                conn.execute(f"CREATE DATABASE {DATABASE}")
            yield cluster
        finally:
            subprocess.run(
                [*prefix, pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                timeout=START_TIMEOUT,
                check=False,
            )
    finally:
        shutil.rmtree(directory, ignore_errors=True)
