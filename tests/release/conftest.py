"""The ``release`` tests run only when asked for, with ``-m release`` (``make release-check``).

They build or install the distributions and take minutes, so the suite that
``make test`` and every pair of the version matrix run leaves them out. This is
done here rather than with ``-m "not release"`` in addopts: any ``-m`` given on
the command line (``NOX_ARGS='-- -m "not server"'``) would replace that one.
"""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "release" in (config.getoption("markexpr", default="") or ""):
        return  # -m names the marker: pytest's own -m selection applies
    kept: list[pytest.Item] = []
    left_out: list[pytest.Item] = []
    for item in items:
        (left_out if item.get_closest_marker("release") else kept).append(item)
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = kept
