"""The house rules on data flow, checked on the source: page → ui/ → bn_core/, never back.

* ``bn_core`` imports neither streamlit nor altair (nor ``ui``), so it runs in scripts,
  benchmarks and worker processes without a UI; importing all of it loads neither.
* Pages import only streamlit, ``ui`` and a little of the standard library: no math.
* Pages stay short.
* Cached functions take plain parameters or frozen dataclasses of them, never tensors.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import pkgutil
import subprocess
import sys
import types
import typing
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


@pytest.mark.parametrize("path", _sources("views"), ids=lambda p: p.name)
def test_pages_hold_no_math_and_stay_short(path):
    assert _imported_roots(path) <= PAGE_MAY_IMPORT, "a page imports only streamlit and ui/"
    assert len(path.read_text().splitlines()) <= MAX_PAGE_LINES


def test_ui_never_imports_a_page():
    for path in _sources("ui"):
        assert "views" not in _imported_roots(path), path


def test_importing_all_of_bn_core_loads_no_ui_library():
    modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__") for p in _sources("bn_core")
    )
    script = f"import importlib, sys\nfor m in {modules!r}: importlib.import_module(m)\n"
    script += "print(sorted(m for m in sys.modules if m.split('.')[0] in ('streamlit', 'altair', 'ui')))"
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


PLAIN = (int, float, str, bool, bytes, type(None))


def _plain(tp: object, seen: set[type]) -> bool:
    """True for plain values, tuples of them and frozen dataclasses made of them (recursively)."""
    if tp in PLAIN:
        return True
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if origin in (tuple, typing.Union, types.UnionType, typing.Literal):
        return origin is typing.Literal or all(a is Ellipsis or _plain(a, seen) for a in args)
    if isinstance(tp, type) and dataclasses.is_dataclass(tp):
        if tp in seen:
            return True
        seen.add(tp)
        hints = typing.get_type_hints(tp)
        return tp.__dataclass_params__.frozen and all(_plain(hints[f.name], seen) for f in dataclasses.fields(tp))
    return False


def _cached_functions() -> list[tuple[str, object]]:
    from streamlit.runtime.caching.cache_utils import CachedFunc

    import ui

    found = []
    for info in pkgutil.walk_packages(ui.__path__, prefix="ui."):
        module = importlib.import_module(info.name)
        for name, obj in vars(module).items():
            is_cached = isinstance(obj, CachedFunc) or hasattr(obj, "__memo_of__")  # ui.cache.cached
            if is_cached and obj.__wrapped__.__module__ == module.__name__:
                found.append((f"{module.__name__}.{name}", obj.__wrapped__))
    return found


def test_cached_functions_take_plain_parameters_or_frozen_dataclasses():
    """Cache keys are hashed from the arguments: plain values and frozen configs, never tensors.

    Parameters starting with ``_`` (the progress callback) are not hashed by Streamlit.
    """
    cached = _cached_functions()
    assert len(cached) > 40  # every page's cached computations and chart specs were found
    for name, fn in cached:
        hints = typing.get_type_hints(fn)
        for param in inspect.signature(fn).parameters:
            if not param.startswith("_"):
                assert param in hints and _plain(hints[param], set()), f"{name}({param}: {hints.get(param)})"


APP_SOURCES = ["app.py", *(str(p.relative_to(ROOT)) for d in ("views", "ui", "bn_core") for p in _sources(d))]
MAX_FILE_LINES, MAX_FUNCTION_LINES = 500, 50


SHORT_SOURCES = [*APP_SOURCES, *(str(p.relative_to(ROOT)) for d in ("bench", "tests") for p in _sources(d))]


@pytest.mark.parametrize("path", SHORT_SOURCES)
def test_files_and_functions_stay_short(path):
    """Every source file under 500 lines (the app, its benchmarks, its tests), no function over 50 (cut along the
    seams instead)."""
    source = (ROOT / path).read_text()
    assert len(source.splitlines()) < MAX_FILE_LINES, path
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            length = node.end_lineno - node.lineno + 1
            assert length <= MAX_FUNCTION_LINES, f"{path}:{node.lineno} {node.name} has {length} lines"


PER_PAGE_NAMES = {"questions", "takeaway"}  # each experiment package's quiz/verdict entry point, by design


def test_no_library_name_is_defined_twice():
    """One name per thing: a top-level class or function of bn_core lives in one module.

    (ui/ keeps per-page names such as ``controls`` and ``compute`` on purpose: each page module has its own.)
    """
    seen: dict[str, str] = {}
    twice = []
    for path in (p for p in APP_SOURCES if p.startswith("bn_core/")):
        for node in ast.parse((ROOT / path).read_text()).body:
            if (
                isinstance(node, ast.ClassDef | ast.FunctionDef)
                and node.name[0] != "_"
                and node.name not in PER_PAGE_NAMES
            ):
                if node.name in seen:
                    twice.append(f"{node.name}: {seen[node.name]} and {path}")
                seen.setdefault(node.name, path)
    assert twice == []


@pytest.mark.parametrize("path", _sources("bn_core/experiments"), ids=lambda p: str(p.relative_to(ROOT)))
def test_experiments_configure_run_and_summarize_only(path):
    """One engine: no model class and no optimizer loop in bn_core/experiments/ (they live in models, train, engine)."""
    tree = ast.parse(path.read_text())
    bases = {ast.unparse(b) for node in ast.walk(tree) if isinstance(node, ast.ClassDef) for b in node.bases}
    assert not bases & {"nn.Module", "torch.nn.Module", "Module"}, path
    calls = {ast.unparse(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    assert not any(c.endswith((".backward", ".step", "zero_grad")) or c.startswith("torch.optim") for c in calls), path
