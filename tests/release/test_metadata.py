"""Fast checks of what a release publishes, run with the rest of the suite.

README.rst is the PyPI page; its links must lead somewhere real. The docs are
not published yet, so README links to their sources under docs/, and each of
those pages must exist (tests/release/test_wheel.py also checks that the docs
build turns each into an HTML page).
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import raincheck

REPO_ROOT = Path(__file__).resolve().parents[2]
README = REPO_ROOT / "README.rst"
# Read as text, not with tomllib: Python 3.10, which the matrix runs, has none.
PYPROJECT = (REPO_ROOT / "pyproject.toml").read_text()

# `text <target>`_ and `text <target>`__, the only link forms README uses.
LINK = re.compile(r"`[^`<]*<([^>]+)>`__?", re.DOTALL)


def readme_links() -> list[str]:
    return LINK.findall(README.read_text())


def test_readme_has_no_links_to_unpublished_docs() -> None:
    links = readme_links()
    assert links, "no links found in README.rst: has the link syntax changed?"
    unpublished = [link for link in links if "readthedocs" in link]
    assert not unpublished, f"README.rst links to docs that are not published: {unpublished}"


def test_readme_relative_links_lead_to_files_and_anchors() -> None:
    relative = [link for link in readme_links() if not re.match(r"[a-z]+:", link)]
    assert any(link.startswith("docs/") for link in relative)
    for link in relative:
        path, _, anchor = link.partition("#")
        target = REPO_ROOT / path
        assert target.is_file(), f"README.rst links to {path}, which does not exist"
        if anchor:
            # A section's anchor: an explicit label, or a title that docutils slugs to it.
            text = target.read_text()
            titles = {
                re.sub(r"[^a-z0-9]+", "-", line.lower()).strip("-") for line in text.splitlines()
            }
            assert f".. _{anchor}:" in text or anchor in titles, f"no #{anchor} in {path}"


def test_readme_says_how_to_build_the_docs() -> None:
    text = README.read_text()
    assert "not published" in text
    assert "make docs" in text


def test_the_version_has_one_source() -> None:
    """pyproject.toml takes the version from raincheck.__version__, and so does Sphinx."""
    assert not re.search(r"^version\s*=\s*[\"']", PYPROJECT, re.MULTILINE), "a static version"
    assert re.search(r'^dynamic = \[.*"version"', PYPROJECT, re.MULTILINE)
    assert re.search(r'^version = \{ *attr = "raincheck\.__version__" *\}', PYPROJECT, re.MULTILINE)
    conf = runpy.run_path(str(REPO_ROOT / "docs" / "conf.py"))
    assert conf["release"] == raincheck.__version__


def test_project_urls_do_not_point_at_unpublished_docs() -> None:
    assert "readthedocs.io" not in PYPROJECT
