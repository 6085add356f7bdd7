"""docs/scaling.rst's Celery section, followed word for word in a fresh project.

The project is made the way the page says (``startproject``, ``startapp``),
its files are the page's code blocks between ``.. celery-project-start`` and
``.. celery-project-end``, and the worker is started with the page's command.
The one change: the broker URL points at this test's own Redis. So the page
and what runs cannot drift apart.
"""

from __future__ import annotations

import http.client
import importlib.util
import os
import re
import shlex
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.servers.harness import free_port
from tests.tasks.processes import REPO_ROOT, Process, wait_for_port, wait_until
from tests.tasks.redis_server import REDIS_SERVER, RedisServer

pytestmark = pytest.mark.server

PAGE = REPO_ROOT / "docs" / "scaling.rst"
DOCS_REDIS = "redis://127.0.0.1:6379"
FILE_COMMENT = re.compile(r"# (?P<path>[\w/]+\.py)(?P<append>, at the end)?")


def celery_section() -> str:
    text = PAGE.read_text()
    return text[text.index(".. celery-project-start") : text.index(".. celery-project-end")]


def code_blocks(section: str, language: str) -> list[str]:
    """The dedented bodies of the ``.. code-block:: language`` directives in ``section``."""
    pattern = rf"\.\. code-block:: {language}\n\n((?:(?:    .*)?\n)+)"
    return [textwrap.dedent(body).strip() + "\n" for body in re.findall(pattern, section)]


def test_page_has_the_project_files_and_the_worker_command() -> None:
    """The Celery section names each file it shows, and a worker command."""
    section = celery_section()
    matches = [FILE_COMMENT.match(block) for block in code_blocks(section, "python")]
    paths = [match["path"] if match else None for match in matches]
    assert paths == [
        "mysite/celery.py",
        "mysite/__init__.py",
        "mysite/settings.py",
        "shop/tasks.py",
        "shop/views.py",
        "mysite/urls.py",
    ]
    assert "$ celery -A mysite worker -l INFO" in code_blocks(section, "console")[0]


def test_following_the_page_gets_a_job_run_by_a_celery_worker(tmp_path: Path) -> None:
    """In a fresh project built from the page, a scheduled job is run by a celery worker."""
    if importlib.util.find_spec("django_tasks_celery") is None:
        pytest.skip(
            "django-tasks-celery is not installed (pip install --group scale-django6; "
            "it needs Python >= 3.12 and Django >= 6.0)"
        )
    if REDIS_SERVER is None:
        pytest.skip("redis-server is not installed (apt-get install redis-server; .ci/run does)")
    project = tmp_path / "project"
    project.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(project),
        "PYTHONUNBUFFERED": "1",
        "DJANGO_SETTINGS_MODULE": "mysite.settings",
    }
    for command in (["startproject", "mysite", "."], ["startapp", "shop"]):
        made = subprocess.run(
            [sys.executable, "-m", "django", *command],
            cwd=project,
            env={k: v for k, v in env.items() if k != "DJANGO_SETTINGS_MODULE"},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert made.returncode == 0, made.stdout + made.stderr

    redis = RedisServer(tmp_path)
    started: list[Process] = []
    try:
        section = celery_section()
        for block in code_blocks(section, "python"):
            match = FILE_COMMENT.match(block)
            assert match is not None, block
            target = project / match["path"]
            body = block.replace(DOCS_REDIS, redis.url)
            if match["append"]:
                target.write_text(target.read_text() + "\n" + body)
            else:
                target.write_text(body)

        (worker_line,) = [
            line.removeprefix("$ ")
            for line in code_blocks(section, "console")[0].splitlines()
            if line.startswith("$ celery ")
        ]
        worker_args = shlex.split(worker_line)[1:]  # `celery ...` is `python -m celery ...`
        worker = Process("worker", worker_args, env, tmp_path, module="celery", cwd=project)
        started.append(worker)
        port = free_port()
        server = Process(
            "runserver",
            ["runserver", "--noreload", f"127.0.0.1:{port}"],
            env,
            tmp_path,
            cwd=project,
        )
        started.append(server)
        wait_for_port(port, server)

        status, _ = get_text(port, "/checkout/?order=42")
        assert status == 200

        def ran() -> bool:
            log = worker.log.read_text(errors="replace")
            return bool(
                re.search(
                    r"Task raincheck\.tasks\.routed\.shop:tasks:send_receipt\[\S+\] succeeded "
                    r"in \S+: 'receipt 42 sent'",
                    log,
                )
            )

        wait_until(ran, "the worker running the job", worker, server)
        assert "unregistered" not in worker.log.read_text(errors="replace")
    finally:
        for process in reversed(started):
            process.stop()
        redis.stop()


def get_text(port: int, path: str) -> tuple[int, str]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        return response.status, response.read().decode()
    finally:
        connection.close()
