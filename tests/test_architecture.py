"""The house rules on data flow, checked on the source: page → ui/ → bn_core/, never back.

* ``bn_core`` imports neither streamlit nor altair (nor ``ui``), so it runs in scripts,
  benchmarks and worker processes without a UI; importing all of it loads neither.
* Pages import only streamlit, ``ui`` and a little of the standard library: no math.
* Pages stay short.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_LIBRARIES = {"streamlit", "altair", "ui"}
PAGE_MAY_IMPORT = {"__future__", "streamlit", "ui", "runpy", "pathlib"}
MAX_PAGE_LINES = 120


def _imported_roots(path: Path) -> set[str]:
    """The top-level package of every import in ``path`` (relative imports excluded)."""
    roots: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            roots.add(node.module.split(".")[0])
    return roots


def _sources(folder: str) -> list[Path]:
    files = sorted((ROOT / folder).rglob("*.py"))
    assert files, f"no sources under {folder}/"
    return files


@pytest.mark.parametrize("path", _sources("bn_core"), ids=lambda p: str(p.relative_to(ROOT)))
def test_bn_core_never_imports_the_ui(path):
    assert not _imported_roots(path) & UI_LIBRARIES


@pytest.mark.parametrize("path", _sources("pages"), ids=lambda p: p.name)
def test_pages_hold_no_math_and_stay_short(path):
    assert _imported_roots(path) <= PAGE_MAY_IMPORT, "a page imports only streamlit and ui/"
    assert len(path.read_text().splitlines()) <= MAX_PAGE_LINES


def test_ui_never_imports_a_page():
    for path in _sources("ui"):
        assert "pages" not in _imported_roots(path), path


def test_importing_all_of_bn_core_loads_no_ui_library():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in _sources("bn_core")
    )
    script = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
    script += "print(sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'altair', 'ui')))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
