"""docs/observability.rst's recipes are the setup tests/servers/test_observability.py runs.

Each recipe the page marks with ``.. tested-as: FILE...`` (an invisible reST
comment) must appear in those files of the test project: every line of the code
block, in order within each file, except the few listed in ``DIFFERENCES``,
each with the reason the test project cannot use it as it is.
"""

from __future__ import annotations

import re
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PAGE = REPO_ROOT / "docs" / "observability.rst"
RECIPE = re.compile(
    r"^\.\. tested-as: (?P<files>.+)\n\n\.\. code-block:: python\n\n(?P<body>(?:(?:    .*)?\n)+)",
    re.MULTILINE,
)

# Lines of the page that the test project writes otherwise, and why.
DIFFERENCES = {
    '"filename": "logs/json.log",': "the log file is in the server's own directory",
    '"myapp": {"handlers": ["json_file"], "level": "INFO"},': "the project's code is `tests`",
    "LOGGING = {": "annotated for mypy",
    'dsn="https://<key>@<organization>.ingest.sentry.io/<project>",': "no real host",
    "def report_job_failure(sender, exception, args, kwargs, **extra):": "annotated for mypy",
    "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter": (
        "spans are exported to memory, where the test reads them"
    ),
    "from opentelemetry.sdk.trace.export import BatchSpanProcessor": (
        "SimpleSpanProcessor: a span is exported as it ends"
    ),
    "provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))": (
        "spans are exported to memory, where the test reads them"
    ),
}

TESTED = {
    (
        "tests/servers/project/observe_structlog.py",
        "tests/servers/project/settings.py",
    ),
    ("tests/servers/project/observe_sentry.py",),
    ("tests/servers/project/sentry_receiver.py",),
    ("tests/servers/project/observe_otel.py",),
}


def recipes() -> list[tuple[tuple[str, ...], list[str]]]:
    """(files, the block's code lines, stripped, without comments) of each marked recipe."""
    found = []
    for match in RECIPE.finditer(PAGE.read_text()):
        lines = [line.strip() for line in match["body"].splitlines()]
        found.append(
            (tuple(match["files"].split()), [line for line in lines if line and line[0] != "#"])
        )
    return found


def missing_lines(lines: list[str], files: tuple[str, ...]) -> list[str]:
    """The lines not found, in order, in one of ``files`` (each file read top to bottom)."""
    sources = [
        [line.strip() for line in (REPO_ROOT / name).read_text().splitlines()] for name in files
    ]
    cursors = [0] * len(sources)
    missing = []
    for line in lines:
        if line in DIFFERENCES:
            continue
        for i, source in enumerate(sources):
            if line in source[cursors[i] :]:
                cursors[i] = source.index(line, cursors[i]) + 1
                break
        else:
            missing.append(line)
    return missing


def test_the_page_marks_each_recipe_with_the_project_files_that_run_it() -> None:
    """structlog, Sentry's init, the job_failed receiver and OpenTelemetry are marked."""
    assert {files for files, _ in recipes()} == TESTED


def test_each_recipe_is_what_the_test_project_runs() -> None:
    """Every line of a marked recipe is in its project files, in order, but the listed ones."""
    for files, lines in recipes():
        assert missing_lines(lines, files) == [], f"{files} lack these lines of {PAGE.name}"


def test_each_listed_difference_is_on_the_page() -> None:
    """No exemption outlives the line of the page it was made for."""
    lines = {line for _, block in recipes() for line in block}
    assert set(DIFFERENCES) <= lines
