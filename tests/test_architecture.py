"""The layout's rules, checked on the source: one-way imports, matchers see only bench.api.

Every ``import`` statement counts, including those inside functions (a lazy import is
still a dependency) and those under ``if TYPE_CHECKING:``.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: The steps of the data flow from the bottom up (docs/architecture.md). A module may
#: import modules of its own layer and of the layers below it, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("bench.sql",),
    ("bench.api",),
    ("bench.data",),
    ("bench.metrics",),
    ("bench.run",),
    ("bench.report",),
    ("bench.testing", "bench.cli", "bench.__main__", "bench"),
)

#: What a built-in matcher may import from the harness: the plugin face only.
MATCHER_ALLOWED = ("bench.api",)


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    """``(line, module)`` for every import of ``bench`` or ``matchers`` in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # ``from bench.sql import engine`` depends on bench.sql.engine
            found += [(node.lineno, f"{node.module}.{a.name}") for a in node.names]
    return [(line, mod) for line, mod in found if mod.split(".")[0] in ("bench", "matchers")]


def _layer(module: str) -> int | None:
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for i, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            inside = module == prefix or module.startswith(prefix + ".")
            if inside and (best is None or len(prefix) > best[0]):
                best = (len(prefix), i)
    return None if best is None else best[1]


def _sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def layer_violations(files: list[Path], root: Path = ROOT) -> list[str]:
    """Imports that run upwards, against the data flow."""
    bad = []
    for path in files:
        me = _module_name(path, root)
        mine = _layer(me)
        for line, target in _imports(path):
            if target.startswith("matchers"):
                bad.append(
                    f"{path.relative_to(root)}:{line} imports {target} (bench never imports matchers)"
                )
                continue
            theirs = _layer(target)
            if mine is not None and theirs is not None and theirs > mine:
                bad.append(
                    f"{path.relative_to(root)}:{line}: {me} (layer {LAYERS[mine][0]}) imports "
                    f"{target} (layer {LAYERS[theirs][0]}, above it)"
                )
    return bad


def matcher_violations(files: list[Path], root: Path = ROOT) -> list[str]:
    """Harness imports of built-in matchers other than the plugin face."""
    bad = []
    for path in files:
        for line, target in _imports(path):
            if target.startswith("bench") and not any(
                target == a or target.startswith(a + ".") for a in MATCHER_ALLOWED
            ):
                bad.append(f"{path.relative_to(root)}:{line} imports {target}; use bench.api")
    return bad


def test_imports_follow_the_data_flow() -> None:
    assert layer_violations(_sources("bench")) == []


def test_builtin_matchers_import_only_the_plugin_api() -> None:
    assert matcher_violations(_sources("matchers")) == []


def test_every_bench_module_has_a_layer() -> None:
    unplaced = [p for p in _sources("bench") if _layer(_module_name(p, ROOT)) is None]
    assert unplaced == []


@pytest.mark.parametrize(
    ("where", "line", "expected"),
    [
        ("bench/sql/engine.py", "from bench.run.results import canonical_json", "above it"),
        ("bench/metrics/core.py", "from bench.report import build", "above it"),
        ("bench/data/dataset.py", "import matchers.cascade", "never imports matchers"),
    ],
)
def test_layer_check_catches_an_upward_import(
    tmp_path: Path, where: str, line: str, expected: str
) -> None:
    fake = tmp_path / where
    fake.parent.mkdir(parents=True)
    fake.write_text((ROOT / where).read_text(encoding="utf-8") + f"\n\ndef _f():\n    {line}\n")
    (problem,) = layer_violations([fake], tmp_path)
    assert expected in problem and where in problem


def test_matcher_check_catches_an_internal_import(tmp_path: Path) -> None:
    fake = tmp_path / "matchers" / "baseline.py"
    fake.parent.mkdir(parents=True)
    src = (ROOT / "matchers" / "baseline.py").read_text(encoding="utf-8")
    fake.write_text(src + "\nfrom bench.sql.engine import quote_ident as _q\n")
    (problem,) = matcher_violations([fake], tmp_path)
    assert "bench.sql.engine.quote_ident" in problem and "use bench.api" in problem


def test_api_exports_what_it_names() -> None:
    import bench.api as api

    missing = [name for name in api.__all__ if not hasattr(api, name)]
    assert missing == []
    for name in ("quote_ident", "literal", "connected_components", "capped_components"):
        assert name in api.__all__
