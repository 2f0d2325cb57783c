"""The HTML report in a real browser: headless Chromium at 1400 px (see :mod:`browser`).

Skipped, with the reason, where no Chromium is installed (``.ci/run`` installs Debian's
``chromium`` package when it can).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest

from bench.report.build import build_report

sys.path.insert(0, str(Path(__file__).parent))
from browser import WIDTH, find_browser, page_checks

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "results" / "demo"
BROWSER = find_browser()

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(BROWSER is None, reason="no Chromium on PATH (apt-get install chromium)"),
]


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    suite = tmp_path_factory.mktemp("browser") / "demo"
    shutil.copytree(FIXTURE, suite)
    return build_report(suite)


def test_report_renders_at_1400px_without_overflow_or_errors(report: Path) -> None:
    assert BROWSER is not None
    checks = page_checks(report, BROWSER)
    assert checks["innerWidth"] == WIDTH
    assert checks["images"] == len(list((report.parent / "figures").glob("*.png"))) > 0
    assert checks["broken"] == []
    assert checks["scrollWidth"] <= checks["innerWidth"], checks["overflowing"]
    assert checks["overflowing"] == []
    assert checks["errors"] == []
    # wide tables scroll inside their own box, first column held in place
    assert all(t["client"] <= WIDTH and t["sticky"] == "sticky" for t in checks["tables"])


def test_the_checks_see_what_is_wrong(tmp_path: Path) -> None:
    assert BROWSER is not None
    page = tmp_path / "bad.html"
    page.write_text(
        "<!DOCTYPE html><html><head></head><body>"
        '<div style="width:3000px">wide</div><img alt="gone" src="missing.png">'
        "<script>console.error('broken on purpose')</script></body></html>",
        encoding="utf-8",
    )
    checks = page_checks(page, BROWSER)
    assert checks["scrollWidth"] > checks["innerWidth"]
    assert checks["broken"] == ["gone"]
    assert "broken on purpose" in checks["errors"]
