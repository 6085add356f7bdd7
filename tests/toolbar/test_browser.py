"""The raincheck panel in a real django-debug-toolbar, served by runserver, seen by Chromium.

The demo project (tests/toolbar/settings.py, with the settings docs/observability.rst
gives) runs under ``runserver --noreload`` on a free port of 127.0.0.1; headless
Chromium (Debian's ``chromium``) opens its page, clicks the toolbar's handle and
the raincheck panel, and finds the job's name in the panel. Its screenshot goes
to the test's temporary directory, and also to ``$RAINCHECK_PANEL_SCREENSHOT``
when set (docs/_static/debug-toolbar-panel.png is made that way).
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import browser
from tests.servers.harness import Server, runserver_argv, start_server

pytest.importorskip(
    "debug_toolbar",
    reason="needs django-debug-toolbar (the toolbar dependency group; Django >= 5.2)",
    exc_type=ImportError,
)

pytestmark = pytest.mark.server

SETTINGS = {"DJANGO_SETTINGS_MODULE": "tests.toolbar.settings"}
JOB = "tests.toolbar.jobs.send_welcome_email"
WIDTH, HEIGHT = 1000, 600
# The toolbar draws itself in a shadow root (its USE_SHADOW_DOM default).
ROOT = "document.getElementById('djDebugRoot')?.shadowRoot"


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """The demo project under runserver; stopped by its PID after the module."""
    started: list[Server] = []
    try:
        yield start_server(
            "toolbar-runserver",
            runserver_argv(),
            tmp_path_factory.mktemp("toolbar"),
            env=SETTINGS,
            on_start=started.append,
        )
    finally:
        for server in started:
            server.stop()


def panel_html(server: Server, path: str) -> str:
    """The raincheck panel of the request to ``path``, as the toolbar's script fetches it."""
    page = server.get(path)
    assert page.status == 200, page.body[:2000]
    found = re.search(rb'data-request-id="([0-9a-f]+)"', page.body)
    assert found, server.report("the page has no toolbar")
    request_id = found.group(1).decode()
    panel = server.get_json(
        f"/__debug__/render_panel/?request_id={request_id}&panel_id=RaincheckPanel"
    )
    content: str = panel["content"]
    return content


def test_the_toolbar_serves_the_panel_of_a_page(demo: Server) -> None:
    """The panel of the demo page lists its jobs with where each goes, and the counters."""
    content = panel_html(demo, "/signup/")
    assert JOB in content
    assert "subject=&#x27;Welcome aboard&#x27;" in content
    assert "dropped: an equal job is already scheduled (unique)" in content
    assert "after the response, on the pool" in content
    assert "<th>scheduled</th>" in content


def center_of(selector: str) -> str:
    """JavaScript: the centre of the visible element ``selector`` in the toolbar, or null.

    The element is scrolled into view first: the toolbar's list of panels is
    taller than the window, and a click lands only inside it.
    """
    return f"""(() => {{
      const el = {ROOT}?.querySelector({json.dumps(selector)});
      el?.scrollIntoView({{block: "center"}});
      const box = el?.getBoundingClientRect();
      return box && box.width && box.height
        ? [box.x + box.width / 2, box.y + box.height / 2] : null;
    }})()"""


def test_chromium_finds_the_job_in_the_panel(demo: Server, tmp_path: Path) -> None:
    """Opening the page, the toolbar's handle and the raincheck panel shows the job's name."""
    executable = browser.find_chromium()
    if executable is None:
        pytest.skip("needs Chromium (Debian: apt-get install chromium)")
    with browser.chromium(executable) as tools:
        session = tools.new_page(WIDTH, HEIGHT)
        tools.navigate(session, f"http://127.0.0.1:{demo.port}/signup/")
        handle = tools.poll(session, center_of("#djShowToolBarButton"), "the toolbar's handle")
        tools.click(session, *handle)
        button = tools.poll(session, center_of("a.RaincheckPanel"), "the raincheck panel's button")
        tools.click(session, *button)
        names = tools.poll(
            session,
            f"""(() => {{
              const cells = {ROOT}?.querySelectorAll("#RaincheckPanel .raincheck-job-name");
              return cells && cells.length ? Array.from(cells, (cell) => cell.innerText) : null;
            }})()""",
            "the jobs in the raincheck panel",
        )
        assert JOB in names
        shot = tools.screenshot(session)
    assert shot.startswith(b"\x89PNG")
    (tmp_path / "debug-toolbar-panel.png").write_bytes(shot)
    keep = os.environ.get("RAINCHECK_PANEL_SCREENSHOT")
    if keep:
        shutil.copyfile(tmp_path / "debug-toolbar-panel.png", keep)
