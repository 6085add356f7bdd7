"""The package's shape: no import cycles, small modules, each saying what it is for.

Imports are read from the source (function-level ones included), so a cycle
hidden behind a deferred import fails here too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "raincheck"
MAX_LINES = 300


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str) -> set[str]:
    """The raincheck modules that module ``name`` imports, anywhere in its body."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(
                    [*package.split(".")[: len(package.split(".")) - node.level + 1], base]
                )
            found.add(base)
            found.update(f"{base}.{alias.name}" for alias in node.names)
    return {module for module in found if module in MODULES and module != name} - {"raincheck"}


GRAPH = {name: _imports(name) for name in MODULES}


def _cycle_through(start: str) -> list[str] | None:
    """A chain of imports from ``start`` back to itself, if there is one."""
    stack: list[tuple[str, list[str]]] = [(start, [start])]
    seen: set[str] = set()
    while stack:
        name, path = stack.pop()
        for imported in sorted(GRAPH[name]):
            if imported == start:
                return [*path, start]
            if imported not in seen:
                seen.add(imported)
                stack.append((imported, [*path, imported]))
    return None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_is_in_no_import_cycle(name: str) -> None:
    """No module of raincheck imports, directly or not, a module that imports it."""
    cycle = _cycle_through(name)
    assert cycle is None, " -> ".join(cycle or [])


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_says_what_it_is_for(name: str) -> None:
    """Every module opens with a docstring whose first line says what it holds."""
    docstring = ast.get_docstring(ast.parse(MODULES[name].read_text()))
    assert docstring, f"{name} has no docstring"
    assert docstring.splitlines()[0].strip()


@pytest.mark.parametrize("name", sorted(MODULES))
def test_module_stays_small(name: str) -> None:
    """No module grows past a few screens."""
    lines = len(MODULES[name].read_text().splitlines())
    assert lines <= MAX_LINES, f"{name} has {lines} lines"


def test_the_job_path_only_imports_downstream() -> None:
    """A job travels decorator -> scheduling -> buffer -> hand-off -> process -> pool -> worker
    -> job; no step imports one before it."""
    path = [
        "raincheck.decorators",
        "raincheck.scheduling",
        "raincheck.buffers",
        "raincheck.handoff",
        "raincheck.process",
        "raincheck.pool",
        "raincheck.worker",
        "raincheck.jobs",
    ]
    for position, name in enumerate(path):
        upstream = set(path[:position]) & GRAPH[name]
        assert not upstream, f"{name} imports {sorted(upstream)}, which come before it"
