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

# design.rst's diagrams are Graphviz sources in docs/diagrams/ (Debian: graphviz).
extensions: list[str] = ["sphinx.ext.graphviz"]
graphviz_output_format = "svg"
exclude_patterns = ["_build", "_screenshots"]
default_role = "code"
primary_domain = "py"

html_theme = "furo"
html_title = f"raincheck {release}"
# raincheck.css and tables.js: wide tables become one card per row on a phone.
html_static_path = ["_static"]
html_css_files = ["raincheck.css"]
html_js_files = ["tables.js"]


def setup(app: Sphinx) -> None:
    # ``.. setting:: NAME`` marks a setting's section; ``:setting:`NAME``` links to it.
    app.add_crossref_type("setting", "setting", indextemplate="pair: %s; setting")
