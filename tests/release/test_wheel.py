"""The distributions as a user gets them (``make release-check``, ``-m release``).

* The wheel holds the ``raincheck`` package (every subpackage, ``py.typed``) and
  nothing else; the sdist holds the tests and the docs as well.
* The wheel, installed alone into a fresh venv (pip brings Django and
  typing-extensions), runs README.rst's usage example under ``runserver``: the
  example's code is taken from README.rst itself, so the two cannot drift.
* An unpacked sdist builds the docs the way .readthedocs.yaml tells Read the
  Docs to, in a fresh venv: its install commands, then Sphinx with its options.

``make release-check`` builds the distributions into dist/ and passes the
directory in ``$RAINCHECK_DIST``; without it, the tests build their own.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import signal
import subprocess
import sys
import tarfile
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import raincheck
from tests.release.test_metadata import readme_links
from tests.servers.harness import Server, ServerError, free_port, wait_until

pytestmark = pytest.mark.release

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSION = raincheck.__version__
# pip downloads Django (and Sphinx) from the package index: minutes on a slow day.
INSTALL_TIMEOUT = 600
# Directories whose every file the sdist must carry, and files it must not.
SDIST_TREES = (".ci", "benchmarks", "demo", "docs", "tests")
SDIST_FILES = (
    ".readthedocs.yaml",
    "CHANGELOG.rst",
    "LICENSE",
    "MANIFEST.in",
    "Makefile",
    "PKG-INFO",
    "README.rst",
    "noxfile.py",
    "pyproject.toml",
)
GENERATED = re.compile(r"(^|/)(__pycache__|_build|\.venvs?|\.nox|dist)(/|$)|\.py[cod]$|\.sqlite3$")


@dataclass(frozen=True)
class Dists:
    wheel: Path
    sdist: Path


@pytest.fixture(scope="module")
def dists(tmp_path_factory: pytest.TempPathFactory) -> Dists:
    """The wheel and sdist of this version: from ``$RAINCHECK_DIST``, or built here."""
    given = os.environ.get("RAINCHECK_DIST")
    if given:
        where = Path(given).resolve()
    else:
        where = tmp_path_factory.mktemp("dist")
        run([sys.executable, "-m", "build", "--outdir", str(where), str(REPO_ROOT)], cwd=where)
    wheels = sorted(where.glob("*.whl"))
    sdists = sorted(where.glob("*.tar.gz"))
    assert len(wheels) == 1, f"expected one wheel in {where}, found {wheels}"
    assert len(sdists) == 1, f"expected one sdist in {where}, found {sdists}"
    assert wheels[0].name == f"django_raincheck-{VERSION}-py3-none-any.whl"
    assert sdists[0].name == f"django_raincheck-{VERSION}.tar.gz"
    return Dists(wheels[0], sdists[0])


def run(argv: list[str], *, cwd: Path, env: dict[str, str] | None = None) -> str:
    """Run ``argv`` to completion; fail with its output unless it exits 0."""
    done = subprocess.run(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=INSTALL_TIMEOUT,
        check=False,
    )
    if done.returncode != 0:
        pytest.fail(f"$ {shlex.join(argv)}\nexited with {done.returncode}:\n{done.stdout}")
    return done.stdout


def clean_env(venv: Path | None = None) -> dict[str, str]:
    """This process's environment without anything that would put the repo on sys.path.

    With ``venv``, its ``bin`` comes first on PATH, as ``activate`` would do.
    """
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"PYTHONPATH", "PYTHONHOME", "PYTHONWARNINGS", "DJANGO_SETTINGS_MODULE"}
        and not key.startswith("RAINCHECK_")
    }
    env.pop("VIRTUAL_ENV", None)
    env["PYTHONUNBUFFERED"] = "1"
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
        env["PATH"] = os.pathsep.join([str(venv / "bin"), env.get("PATH", "")])
    return env


def fresh_venv(path: Path) -> Path:
    """A new venv at ``path`` (pip only, no system site-packages); its python."""
    run([sys.executable, "-m", "venv", str(path)], cwd=path.parent)
    return path / "bin" / "python"


# --- the files in each distribution ---------------------------------------------------


def repo_files(*trees: str) -> set[str]:
    """Every file under ``trees`` in the checkout, generated ones left out."""
    found = set()
    for tree in trees:
        for path in (REPO_ROOT / tree).rglob("*"):
            name = path.relative_to(REPO_ROOT).as_posix()
            if path.is_file() and not GENERATED.search(name):
                found.add(name)
    return found


def test_wheel_holds_the_package_only(dists: Dists) -> None:
    dist_info = f"django_raincheck-{VERSION}.dist-info/"
    with zipfile.ZipFile(dists.wheel) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(f"{dist_info}METADATA").decode()
        entry_points = wheel.read(f"{dist_info}entry_points.txt").decode()
    package = {name for name in names if not name.startswith(dist_info)}
    # Every file of raincheck/: a data file added there must reach the wheel too.
    expected = repo_files("raincheck")
    assert "raincheck/py.typed" in expected
    assert package == expected, (
        f"missing from the wheel: {sorted(expected - package)}; "
        f"not in raincheck/: {sorted(package - expected)}"
    )
    assert f"{dist_info}licenses/LICENSE" in names
    assert re.search(rf"^Version: {re.escape(VERSION)}$", metadata, re.MULTILINE)
    requires = re.findall(r"^Requires-Dist: (\S+)", metadata, re.MULTILINE)
    assert sorted(requires, key=str.lower) == ["django>=4.2", "typing-extensions>=4.6"]
    assert "raincheck = raincheck.pytest_plugin" in entry_points


def test_sdist_holds_the_tests_and_docs(dists: Dists) -> None:
    prefix = f"django_raincheck-{VERSION}/"
    with tarfile.open(dists.sdist) as sdist:
        names = {
            member.name.removeprefix(prefix) for member in sdist.getmembers() if member.isfile()
        }
    expected = repo_files("raincheck", *SDIST_TREES) | set(SDIST_FILES)
    assert not expected - names, f"missing from the sdist: {sorted(expected - names)}"
    generated = sorted(name for name in names if GENERATED.search(name))
    assert not generated, f"generated files in the sdist: {generated}"
    assert "tests/release/test_wheel.py" in names
    assert "docs/index.rst" in names


# --- README's example, from the wheel alone, under runserver ----------------------------


def readme_example() -> str:
    """The Python code block of README.rst's "Usage" section, dedented."""
    text = (REPO_ROOT / "README.rst").read_text()
    usage = text.split("\nUsage\n-----\n", 1)[1]
    block = re.search(r"^\.\. code-block:: python\n\n((?:(?: {4}.*)?\n)+)", usage, re.MULTILINE)
    assert block is not None, "README.rst's Usage section has no Python code block"
    code = textwrap.dedent(block.group(1))
    assert "@raincheck" in code
    assert ".schedule(" in code
    return code


# The glue README's example leaves to the reader: create_user(), the "welcome"
# page it redirects to, and an email backend. The backend holds each send until
# the test allows it, so the test sees the response arrive while the job (which
# sends the email) has started but not finished: proof that it ran after the
# response. Had the view run the job itself, the response would never arrive.
GLUE = """
import itertools
import time
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.core.mail.backends.filebased import EmailBackend
from django.http import HttpResponse

_numbers = itertools.count(1)


def create_user(request):
    number = next(_numbers)
    return User.objects.create_user(f"reader{number}", email=f"reader{number}@example.com")


def welcome(request):
    return HttpResponse("Welcome")


def ping(request):
    return HttpResponse("pong")


class HeldEmailBackend(EmailBackend):
    def send_messages(self, messages):
        Path(settings.BASE_DIR, "sending").touch()
        deadline = time.monotonic() + 60
        while not Path(settings.BASE_DIR, "release").exists():
            if time.monotonic() > deadline:
                raise TimeoutError("the test never released the email")
            time.sleep(0.02)
        return super().send_messages(messages)
"""

SETTINGS = """
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent
SECRET_KEY = "readme-example"
DEBUG = False
ALLOWED_HOSTS = ["127.0.0.1"]
INSTALLED_APPS = ["django.contrib.contenttypes", "django.contrib.auth", "raincheck"]
MIDDLEWARE = []
ROOT_URLCONF = "urls"
DATABASES = {"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3"}}
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = True
EMAIL_BACKEND = "glue.HeldEmailBackend"
EMAIL_FILE_PATH = BASE_DIR / "outbox"
"""

URLS = """
from django.urls import path

import glue
import views

urlpatterns = [
    path("signup/", views.signup),
    path("welcome/", glue.welcome, name="welcome"),
    path("ping/", glue.ping),
]
"""

WHERE_IS_RAINCHECK = (
    "import importlib.metadata, raincheck;"
    " print(raincheck.__file__); print(importlib.metadata.version('django-raincheck'))"
)

MANAGE = """
import os
import sys

from django.core.management import execute_from_command_line

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "settings")
execute_from_command_line(sys.argv)
"""


def write_site(site: Path) -> None:
    """A one-app Django project whose views.py is README's example (plus create_user)."""
    site.mkdir()
    files = {
        "views.py": f"from glue import create_user\n\n{readme_example()}",
        "glue.py": GLUE,
        "settings.py": SETTINGS,
        "urls.py": URLS,
        "manage.py": MANAGE,
    }
    for name, text in files.items():
        (site / name).write_text(text.lstrip("\n"))


@contextlib.contextmanager
def runserver(python: Path, site: Path, env: dict[str, str]) -> Iterator[Server]:
    """``manage.py runserver --noreload`` on a free port, in its own session; stopped by PID."""
    for attempt in range(3):
        port = free_port()
        argv = [str(python), "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"]
        with (site / "server.log").open("ab") as log:
            process = subprocess.Popen(
                argv,
                cwd=site,
                env=env,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        server = Server("runserver", site, argv, port, process, signal.SIGTERM)
        try:
            try:
                server.wait_ready()
            except ServerError:
                # Another process may have taken the port between bind and listen.
                if attempt < 2 and "already in use" in server.log():
                    continue
                raise
            yield server
            return
        finally:
            server.stop()


def test_wheel_alone_runs_the_readme_example_under_runserver(dists: Dists, tmp_path: Path) -> None:
    python = fresh_venv(tmp_path / "venv")
    env = clean_env(tmp_path / "venv")
    run([str(python), "-m", "pip", "install", "--quiet", str(dists.wheel)], cwd=tmp_path, env=env)
    run([str(python), "-m", "pip", "check"], cwd=tmp_path, env=env)

    site = tmp_path / "site"
    write_site(site)
    # Run from the project's directory, as runserver will be: raincheck must come from the venv.
    where = run([str(python), "-c", WHERE_IS_RAINCHECK], cwd=site, env=env).split()
    assert Path(where[0]).is_relative_to(tmp_path / "venv"), f"raincheck imported from {where[0]}"
    assert where[1] == VERSION
    run([str(python), "manage.py", "check", "--fail-level", "WARNING"], cwd=site, env=env)
    run([str(python), "manage.py", "migrate", "--noinput", "-v", "0"], cwd=site, env=env)

    outbox = site / "outbox"
    with runserver(python, site, env) as server:
        try:
            reply = server.get("/signup/", timeout=30)
        except TimeoutError:
            # The email backend waits for the test: the view must not run the job itself.
            raise ServerError(server.report("no response: did the job run in the view?")) from None
        assert reply.status == 302, server.report(f"/signup/ answered {reply.status}")
        # The response is here; the job has started and is held inside send_mail.
        wait_until((site / "sending").exists, "the job to start sending", server, 30)
        assert not outbox.exists() or not any(outbox.iterdir()), "sent before it was released"
        (site / "release").touch()
        wait_until(lambda: any(outbox.glob("*.log")), "the welcome email", server, 30)
        email = next(outbox.glob("*.log")).read_text()
    assert "Subject: Welcome!" in email
    assert "To: reader1@example.com" in email
    assert "Glad to have you." in email
    log = server.log()
    assert "Traceback" not in log, log
    assert "GET /signup/" in log


# --- .readthedocs.yaml ------------------------------------------------------------------


def test_readthedocs_config_builds_the_docs_from_the_sdist(dists: Dists, tmp_path: Path) -> None:
    import yaml  # the release group only: the test venv has no PyYAML

    with tarfile.open(dists.sdist) as sdist:
        sdist.extractall(tmp_path, filter="data")
    source = tmp_path / f"django_raincheck-{VERSION}"
    config: dict[str, Any] = yaml.safe_load((source / ".readthedocs.yaml").read_text())
    assert config["version"] == 2
    sphinx = config["sphinx"]
    assert sphinx["configuration"] == "docs/conf.py"
    assert sphinx["fail_on_warning"] is True
    install: list[str] = config["build"]["jobs"]["install"]
    assert any("--group docs" in command for command in install), install

    # Read the Docs runs the jobs in its venv, activated, from the checkout's root.
    venv = tmp_path / "venv"
    fresh_venv(venv)
    env = clean_env(venv)
    for command in install:
        run(["bash", "-c", command], cwd=source, env=env)
    conf_dir = (source / sphinx["configuration"]).parent
    html = tmp_path / "html"
    # Read the Docs' own sphinx-build command line (-W --keep-going: fail_on_warning).
    run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "sphinx",
            "-T",
            "-W",
            "--keep-going",
            "-b",
            "html",
            "-d",
            str(tmp_path / "doctrees"),
            "-D",
            "language=en",
            ".",
            str(html),
        ],
        cwd=conf_dir,
        env=env,
    )
    # Every docs page README.rst links to is a page of the build.
    for link in readme_links():
        path = link.partition("#")[0]
        if path.startswith("docs/"):
            page = html / Path(path).relative_to("docs").with_suffix(".html")
            assert page.is_file(), f"README.rst links to {path}; the build made no {page.name}"
