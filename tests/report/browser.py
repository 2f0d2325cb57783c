"""Render a report in headless Chromium and read back what the page looks like.

:func:`page_checks` loads a copy of ``report.html`` with a small script injected into
its head. On ``load`` the script writes a JSON object into ``<pre id="checks">``: how
many images there are and which failed to load, the page's scroll width against the
window's width, elements sticking out of the page (outside table boxes), each table box's
own widths, and every error or ``console.error`` the page raised. Chromium prints the
resulting DOM (``--dump-dom``), so no driver library is needed. :func:`screenshot` saves
what a window shows, optionally after scrolling to the widest table.

Run as a script to take the two documentation screenshots of a built report::

    .venv/bin/python tests/report/browser.py results/default/report.html docs/
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

__all__ = ["BROWSER", "find_browser", "page_checks", "screenshot"]

#: Chromium executables tried in order (Debian's package installs ``chromium``).
BROWSER = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

WIDTH, HEIGHT = 1400, 900

_RECORD_ERRORS = """
<script>
window.__errors = [];
window.addEventListener("error", (e) => {
  const t = e.target;
  window.__errors.push(t && t.tagName ? "failed to load " + t.tagName : String(e.message));
}, true);
const __consoleError = console.error;
console.error = (...args) => { window.__errors.push(args.join(" ")); __consoleError(...args); };
</script>
"""

_CHECKS = """
<script>
window.addEventListener("load", () => {
  const imgs = Array.from(document.images);
  const inner = window.innerWidth;
  const out = Array.from(document.body.querySelectorAll("*"))
    .filter((e) => !e.closest(".table-wrap") && e.getBoundingClientRect().right > inner + 1)
    .slice(0, 10).map((e) => e.tagName + (e.className ? "." + e.className : ""));
  const wraps = Array.from(document.querySelectorAll(".table-wrap")).map((w) => ({
    client: w.clientWidth, scroll: w.scrollWidth,
    sticky: getComputedStyle(w.querySelector("td, th")).position,
  }));
  const result = {
    images: imgs.length,
    broken: imgs.filter((i) => !(i.complete && i.naturalWidth > 0)).map((i) => i.alt),
    scrollWidth: document.scrollingElement.scrollWidth, innerWidth: inner,
    overflowing: out, tables: wraps, errors: window.__errors,
  };
  const pre = document.createElement("pre");
  pre.id = "checks";
  pre.textContent = JSON.stringify(result);
  document.body.appendChild(pre);
});
</script>
"""

#: Moves the widest table (with its heading and caption) to the top of the page and
#: scrolls it half way right, so a screenshot of the first screen shows it with its
#: first column held in place.
_SHOW_WIDEST = """
<script>
document.addEventListener("DOMContentLoaded", () => {
  const wraps = Array.from(document.querySelectorAll(".table-wrap"));
  if (!wraps.length) return;
  const widest = wraps.reduce((a, b) => (b.scrollWidth > a.scrollWidth ? b : a));
  const moved = [widest];
  let prev = widest.previousElementSibling;
  while (prev && moved.length < 4) {
    moved.unshift(prev);
    if (/^H[23]$/.test(prev.tagName)) break;
    prev = prev.previousElementSibling;
  }
  const first = document.body.firstElementChild;
  moved.forEach((el) => document.body.insertBefore(el, first));
  widest.scrollLeft = (widest.scrollWidth - widest.clientWidth) / 2;
});
</script>
"""


def find_browser() -> str | None:
    """Path of a Chromium executable on PATH, or None."""
    for name in BROWSER:
        path = shutil.which(name)
        if path:
            return path
    return None


def _inject(html: str, script: str) -> str:
    return html.replace("<head>", "<head>" + script, 1)


def _run(browser: str, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--hide-scrollbars",
        f"--user-data-dir={profile}",
        f"--window-size={WIDTH},{HEIGHT}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)


def page_checks(report: Path, browser: str) -> dict[str, Any]:
    """Load ``report`` (a copy with the check script) and return what the script found."""
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        page.write_text(
            _inject(report.read_text(encoding="utf-8"), _RECORD_ERRORS + _CHECKS),
            encoding="utf-8",
        )
        done = _run(
            browser,
            Path(tmp) / "profile",
            "--virtual-time-budget=10000",
            "--dump-dom",
            page.as_uri(),
        )
    found = re.search(r'<pre id="checks">(.*?)</pre>', done.stdout, flags=re.S)
    if found is None:
        msg = f"no checks in the page Chromium printed (exit {done.returncode}): {done.stderr[-2000:]}"
        raise AssertionError(msg)
    text = found.group(1).replace("&quot;", '"').replace("&lt;", "<").replace("&gt;", ">")
    return json.loads(text.replace("&amp;", "&"))


def screenshot(report: Path, out: Path, browser: str, *, widest_table: bool = False) -> Path:
    """Save what a 1400 x 900 window shows of ``report`` (or of its widest table) to ``out``."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        page = Path(tmp) / "page.html"
        html = report.read_text(encoding="utf-8")
        page.write_text(_inject(html, _SHOW_WIDEST) if widest_table else html, encoding="utf-8")
        _run(
            browser,
            Path(tmp) / "profile",
            "--virtual-time-budget=10000",
            f"--screenshot={out.resolve()}",
            page.as_uri(),
        )
    return out


if __name__ == "__main__":
    found_browser = find_browser()
    if found_browser is None:
        sys.exit("no Chromium on PATH")
    report_path, docs = Path(sys.argv[1]), Path(sys.argv[2])
    print(screenshot(report_path, docs / "report-first-screen.png", found_browser))
    print(
        screenshot(report_path, docs / "report-widest-table.png", found_browser, widest_table=True)
    )
    print(json.dumps(page_checks(report_path, found_browser), indent=1))
