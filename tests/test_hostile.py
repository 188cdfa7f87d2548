"""Hostile input on every page, generically, from each page's typed state table (``ui/<page>.py: STATE``).

* Tampered links: every control's URL parameter out of range, non-numeric or an
  unknown choice, plus an unknown key, an unknown preset and an extremely long
  value. Each is clamped or ignored with a visible notice, and the page works.
* Widget extremes: every control bound to the state table driven to its minimum,
  then its maximum, in AppTest. No exception, whatever the combination.
"""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from tests.helpers import alerts, assert_clean, open_page, page_states
from ui.state import Field, PageState

WIDGET_KINDS = ("slider", "select_slider", "number_input", "selectbox", "radio", "toggle", "checkbox", "button_group")


STATES = page_states()
IDS = [Path(path).stem for path, _ in STATES]


def _too_big(f: Field) -> str:
    return str(f.hi * 10 + 1000) if f.hi is not None else "1e308"


def _tampered(state: PageState) -> tuple[dict[str, str], list[str]]:
    """One link with every parameter out of bounds, and the names the notices must mention."""
    query, expected = {}, []
    for f in state.fields:
        if f.kind in ("int", "float") and f.hi is not None:
            query[f.key] = _too_big(f)
        elif f.kind == "choice":
            query[f.key] = "no-such-value"
        elif f.kind == "bool":
            query[f.key] = "maybe"
        elif f.kind == "floats":
            query[f.key] = "1,not-a-number"
        else:
            continue
        expected.append(f.name if f.kind != "floats" else f"{f.name}[1]")
    query["definitely_unknown"] = "1"
    if state.presets:
        query["preset"] = "no-such-preset"
    return query, expected


@pytest.mark.parametrize(("path", "state"), STATES, ids=IDS)
def test_tampered_link_is_clamped_with_visible_notices(path, state):
    query, names = _tampered(state)
    at = open_page(path, query=query)
    assert_clean(at)
    notes = " ".join(alerts(at, "warning"))
    assert "definitely_unknown" in notes
    for name in names:
        assert f"**{name}**" in notes, f"no notice for {name}"
    for f in state.fields:  # the URL the page writes back holds only legal values
        if f.kind in ("int", "float") and f.hi is not None:
            assert float(at.query_params[f.key]) <= f.hi


@pytest.mark.parametrize(("path", "state"), STATES, ids=IDS)
def test_non_numeric_and_overlong_values_fall_back_to_defaults(path, state):
    numeric = [f for f in state.fields if f.kind in ("int", "float")]
    if not numeric:
        pytest.skip("no numeric controls")
    query = {f.key: "NaN" if i % 2 else "x" * 5000 for i, f in enumerate(numeric)}
    at = open_page(path, query=query)
    assert_clean(at)
    notes = " ".join(alerts(at, "warning"))
    for i, f in enumerate(numeric):
        assert ("not a finite number" if i % 2 else "characters long") in notes
        value = float(at.query_params[f.key])
        assert math.isclose(value, float(f.default), rel_tol=1e-6) or f.choices, f.key


def _widget(at, key: str):
    for kind in WIDGET_KINDS:
        try:
            return getattr(at, kind)(key=key)
        except KeyError:
            continue
    return None


def _drive(widget, f: Field, which: int) -> None:
    """Set a widget to its own minimum (which=0) or maximum (which=1)."""
    if f.kind == "bool":
        widget.set_value(bool(which))
    elif hasattr(widget, "select_index"):  # selectbox: its options may be a subset of the field's choices
        widget.select_index(len(widget.options) - 1 if which else 0)
    elif f.choices:
        widget.set_value(f.choices[-1 if which else 0])
    else:
        bound = widget.max if which else widget.min
        widget.set_value(int(bound) if f.kind == "int" else float(bound))


@pytest.mark.slow
@pytest.mark.parametrize(("path", "state"), STATES, ids=IDS)
def test_every_control_at_its_minimum_then_maximum(path, state):
    at = open_page(path)
    assert_clean(at)
    for which in (0, 1):
        driven = 0
        for f in state.fields:
            widget = _widget(at, state.key(f.key))
            if widget is None or f.kind == "floats" or getattr(widget, "disabled", False):
                continue  # not on screen, or greyed out: a student cannot touch it either
            _drive(widget, f, which)
            driven += 1
        at.run()
        assert_clean(at)
        assert driven > 0
