"""The plugin guide's example is a working plugin that uses only ``bench.api``."""

from __future__ import annotations

import ast
import re
from pathlib import Path

from bench.testing import check_matcher

GUIDE = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _example_source() -> str:
    blocks = re.findall(r"```python\n(.*?)```", GUIDE.read_text(encoding="utf-8"), re.S)
    return blocks[0]


def test_the_example_imports_only_the_plugin_api() -> None:
    tree = ast.parse(_example_source())
    harness = [
        node.module
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("bench")
    ]
    assert harness == ["bench.api"]


def test_the_example_passes_every_check_but_registration() -> None:
    namespace: dict = {}
    exec(compile(_example_source(), str(GUIDE), "exec"), namespace)
    outcomes = check_matcher(namespace["MyMatcher"]())
    failed = {o.check: o.message for o in outcomes if o.status == "failed"}
    # the example is not installed under an entry point; everything else must hold
    assert set(failed) == {"check_registered"}, failed
