"""Open the built docs in headless Chromium, as a reader would, and check them.

``make docs-check`` runs this after ``make docs``. Sphinx's ``-W`` catches broken
markup and references, but not what a reader meets in the browser: a table
wider than the page, a header row that came out empty, an image that does not
load. So every page of ``docs/_build/html`` is served on 127.0.0.1, opened at a
desktop width (1280 px) and a phone width (390 px), and checked:

- no table or figure is wider than the text column (a table that only shows
  its last columns after a sideways scroll counts as too wide);
- every table has a header row, and no header row is empty;
- every image loads;
- every link inside the site points to a page or file that exists, and to an
  anchor that exists in it.

Screenshots of the key pages go to ``docs/_screenshots/`` (not committed), so a
failure can be looked at. Chromium is driven over the DevTools protocol; it is
started with a fresh profile and stopped by its PID.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import os
import shutil
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

DOCS = Path(__file__).resolve().parent
# The Chromium driver is shared with the tests (tests/browser.py).
sys.path.insert(0, str(DOCS.parent))
from tests import browser  # noqa: E402
from tests.browser import TIMEOUT  # noqa: E402

WIDTHS = (1280, 390)
HEIGHT = 900
KEY_PAGES = ("index", "design", "servers", "benchmarks", "tasks", "installation")
# Chromium caps a screenshot's size; the longest pages are cut there.
MAX_SCREENSHOT_HEIGHT = 14000

# Runs in the page once it has loaded; returns what the page shows, as JSON.
# Sizes are compared with a pixel of slack for sub-pixel layout.
PAGE_SCRIPT = r"""
(async () => {
  await document.fonts.ready;
  await Promise.all(Array.from(document.images, (img) => img.complete ? null :
    new Promise((done) => {
      img.addEventListener("load", done);
      img.addEventListener("error", done);
    })));
  // Let the theme's and the page's scripts finish their layout work.
  await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
  const problems = [];
  const main = document.querySelector("article[role=main]") || document.body;
  const column = main.getBoundingClientRect();
  const limit = column.right + 1;
  const name = (el) => {
    const text = (el.innerText || el.getAttribute("alt") || el.getAttribute("src") ||
                  el.getAttribute("data") || "").replace(/\s+/g, " ").trim();
    const heading = el.closest("section")?.querySelector("h1, h2, h3, h4");
    const where = heading ? ` in "${heading.innerText.replace(/¶$/, "").trim()}"` : "";
    return `"${text.slice(0, 50)}${text.length > 50 ? "…" : ""}"${where}`;
  };
  const px = (value) => `${Math.round(value)} px`;
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1) {
    problems.push(`the page is ${px(page.scrollWidth)} wide in a ${px(window.innerWidth)} window`);
  }
  main.querySelectorAll("table").forEach((table) => {
    const label = `table ${name(table.tHead || table)}`;
    const box = table.closest(".table-wrapper");
    const rect = table.getBoundingClientRect();
    // The theme pads its table wrapper a few pixels past the column: a table
    // that fills the wrapper is fine, one that makes it scroll sideways is not.
    const scrolls = box && box.scrollWidth > box.clientWidth + 1;
    if (scrolls || rect.right > limit + 8) {
      problems.push(`${label} is ${px(rect.width)} wide, the column ${px(column.width)}`);
    }
    // Sphinx's own index pages lay out with header-less tables: only the
    // tables written in the docs (class "docutils") need a header.
    if (!table.classList.contains("docutils")) return;
    if (!table.tHead || table.tHead.rows.length === 0) {
      problems.push(`${label} has no header row`);
    } else {
      for (const row of table.tHead.rows) {
        if (Array.from(row.cells).every((cell) => cell.innerText.trim() === "")) {
          problems.push(`${label} has an empty header row`);
        }
      }
    }
  });
  for (const img of main.querySelectorAll("img")) {
    if (!img.complete || img.naturalWidth === 0) {
      problems.push(`image ${name(img)} does not load`);
    }
  }
  const objects = Array.from(main.querySelectorAll("object[data]"));
  for (const obj of objects) {
    const reply = await fetch(obj.data, { method: "HEAD" }).catch(() => null);
    if (!reply || !reply.ok) problems.push(`image ${name(obj)} does not load`);
  }
  for (const el of main.querySelectorAll("img, object, svg, figure, div.graphviz")) {
    if (el.closest("pre, .highlight, table")) continue;
    const rect = el.getBoundingClientRect();
    if (rect.width === 0) continue;  // hidden (a theme's icon, say)
    if (rect.right > limit || el.scrollWidth > el.clientWidth + 1) {
      problems.push(`figure ${name(el)} is ${px(Math.max(rect.width, el.scrollWidth))} wide, ` +
                    `the column ${px(column.width)}`);
    }
  }
  const links = Array.from(document.querySelectorAll("a[href]"), (a) => a.href);
  const ids = Array.from(document.querySelectorAll("[id], a[name]"), (el) => el.id || el.name);
  return { problems, links, ids, height: page.scrollHeight };
})()
"""


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    links: dict[str, set[str]] = field(default_factory=dict)  # link -> pages it is on
    ids: dict[str, set[str]] = field(default_factory=dict)  # page path -> its ids

    def add(self, where: str, problem: str) -> None:
        self.problems.append(f"{where}: {problem}")


@contextlib.contextmanager
def serve(root: Path) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1, on a free port, from a thread of this process."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    handler = functools.partial(Quiet, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def find_chromium() -> str:
    path = browser.find_chromium()
    if path is None:
        sys.exit("docs-check: Chromium not found (Debian: apt-get install chromium)")
    return path


def pages(root: Path) -> list[str]:
    """Every HTML page of the site, as paths relative to its root."""
    skip = ("_static", "_sources", "_images", "_screenshots")
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*.html")
        if not path.relative_to(root).parts[0].startswith(skip)
    )


def check_page(
    tools: browser.DevTools, session: str, base: str, page: str, *, width: int, shots: Path | None
) -> dict[str, Any]:
    tools.navigate(session, base + page)
    try:
        found: dict[str, Any] = tools.evaluate(session, PAGE_SCRIPT)
    except RuntimeError as exc:
        raise RuntimeError(f"{page}: {exc}") from exc
    stem = page.removesuffix(".html")
    if shots is not None and stem in KEY_PAGES:
        height = min(int(found["height"]), MAX_SCREENSHOT_HEIGHT)
        clip = {"x": 0, "y": 0, "width": width, "height": height}
        (shots / f"{stem}-{width}.png").write_bytes(tools.screenshot(session, clip))
    return found


def check_links(report: Report, base: str) -> None:
    """Internal links: the page or file exists, and so does the anchor."""
    checked_files: dict[str, bool] = {}
    for link, sources in sorted(report.links.items()):
        if not link.startswith(base):
            continue  # another site: not ours to check here
        url = urllib.parse.urlsplit(link)
        path = urllib.parse.unquote(url.path.removeprefix(urllib.parse.urlsplit(base).path))
        if path == "" or path.endswith("/"):
            path += "index.html"
        where = ", ".join(sorted(sources)[:3])
        if path in report.ids:
            if url.fragment and urllib.parse.unquote(url.fragment) not in report.ids[path]:
                report.add(where, f"link to {path}#{url.fragment}: no such anchor")
            continue
        if path not in checked_files:
            try:
                request = urllib.request.Request(base + path, method="HEAD")
                with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
                    checked_files[path] = response.status == 200
            except urllib.error.URLError:
                checked_files[path] = False
        if not checked_files[path]:
            report.add(where, f"link to {path}: no such page or file")


def run(root: Path, shots: Path | None) -> Report:
    report = Report()
    if shots is not None:
        shutil.rmtree(shots, ignore_errors=True)
        shots.mkdir(parents=True)
    with serve(root) as base, browser.chromium(find_chromium()) as tools:
        target = tools.call("Target.createTarget", url="about:blank")["targetId"]
        session = tools.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        tools.call("Page.enable", session)
        for width in WIDTHS:
            tools.call(
                "Emulation.setDeviceMetricsOverride",
                session,
                width=width,
                height=HEIGHT,
                deviceScaleFactor=1,
                mobile=width < 600,
            )
            for page in pages(root):
                found = check_page(tools, session, base, page, width=width, shots=shots)
                for problem in found["problems"]:
                    report.add(f"{page} at {width} px", problem)
                report.ids[page] = set(found["ids"])
                for link in found["links"]:
                    report.links.setdefault(link, set()).add(page)
        check_links(report, base)
    return report


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python docs/sitecheck.py", description=__doc__)
    parser.add_argument("html", nargs="?", type=Path, default=DOCS / "_build" / "html")
    parser.add_argument("--screenshots", type=Path, default=DOCS / "_screenshots")
    parser.add_argument("--no-screenshots", action="store_true")
    args = parser.parse_args(argv)
    root: Path = args.html.resolve()
    if not (root / "index.html").exists():
        print(f"docs-check: no built site in {root} (run make docs)", file=sys.stderr)
        return 2
    shots = None if args.no_screenshots else args.screenshots.resolve()
    report = run(root, shots)
    for problem in report.problems:
        print(f"FAIL {problem}")
    checked = f"{len(report.ids)} pages at {' and '.join(f'{w} px' for w in WIDTHS)}"
    if shots is not None:
        rel = os.path.relpath(shots)
        checked += f"; screenshots in {rel}"
    if report.problems:
        print(f"docs-check: {len(report.problems)} problem(s) in {checked}")
        return 1
    print(f"docs-check: no problems in {checked}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
