"""Sphinx configuration for raincheck's documentation (``make docs``)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sphinx.application import Sphinx

_init = (Path(__file__).parent.parent / "raincheck" / "__init__.py").read_text()
_match = re.search(r'^__version__ = "([^"]+)"', _init, re.MULTILINE)

project = "raincheck"
author = "raincheck contributors"
copyright = "raincheck contributors"
release = _match.group(1) if _match else "unknown"
version = release

extensions: list[str] = []
exclude_patterns = ["_build"]
default_role = "code"
primary_domain = "py"

html_theme = "furo"
html_title = f"raincheck {release}"


def setup(app: Sphinx) -> None:
    # ``.. setting:: NAME`` marks a setting's section; ``:setting:`NAME``` links to it.
    app.add_crossref_type("setting", "setting", indextemplate="pair: %s; setting")
