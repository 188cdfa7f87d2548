"""ui.state without a browser: URL parsing, clamping, and the round trip value → URL → value."""

from __future__ import annotations

import pytest

from tests.helpers import page_states
from ui.sidebar import GLOBAL
from ui.state import Field, _fmt, _legal, parse_value


def parse(f: Field, raw: str) -> tuple[object, list[str]]:
    notices: list[str] = []
    return parse_value(f, raw, notices), notices


def test_numbers_are_clamped_with_a_notice():
    f = Field("n", 32, "int", 1, 512, label="batch size")
    assert parse(f, "64") == (64, [])
    value, notices = parse(f, "100000")
    assert value == 512 and "above the maximum" in notices[0] and "batch size" in notices[0]
    value, notices = parse(f, "-3")
    assert value == 1 and "below the minimum" in notices[0]


@pytest.mark.parametrize("raw", ["nan", "inf", "abc", "", "1e999"])
def test_non_numbers_fall_back_to_the_default(raw):
    value, notices = parse(Field("lr", 0.1, "float", 1e-4, 10.0), raw)
    assert value == 0.1 and notices


def test_choices_bools_and_grids():
    assert parse(Field("k", "a", "choice", choices=("a", "b")), "b") == ("b", [])
    value, notices = parse(Field("k", "a", "choice", choices=("a", "b")), "<script>")
    assert value == "a" and "not one of" in notices[0]
    assert parse(Field("t", False, "bool"), "yes")[0] is True
    assert parse(Field("t", False, "bool"), "maybe") == (
        False,
        ["**t** = `maybe` is not true/false; using the default."],
    )
    grid = tuple(10.0**k for k in range(-5, 1))
    value, notices = parse(Field("eps", 1e-5, "float", 1e-5, 1.0, choices=grid), "0.002")
    assert value == 1e-3 and "nearest" in notices[0]


def test_overlong_values_and_lists():
    value, notices = parse(Field("k", "a", "choice", choices=("a",)), "x" * 1000)
    assert value == "a" and "ignored" in notices[0]
    f = Field("g", (1.0, 1.0), "floats", -10, 10, max_len=3)
    assert parse(f, "2,nan,30,4,5")[0] == (2.0, 1.0, 10.0)


def test_a_cleared_choice_never_enters_the_model():
    f = Field("lab", "ema", "choice", choices=("ema", "shift"))
    assert _legal(f, "shift") and not _legal(f, None) and not _legal(f, "other")


@pytest.mark.parametrize("state", [GLOBAL] + [s for _path, s in page_states()], ids=lambda s: s.page)
def test_every_default_survives_the_url_round_trip(state):
    for name in state.keys:
        f = state.spec(name)
        value, notices = parse(f, _fmt(f.default))
        assert notices == [], (name, notices)
        if isinstance(f.default, float):
            assert value == pytest.approx(f.default, rel=1e-5), name
        else:
            assert value == (tuple(f.default) if isinstance(f.default, list) else f.default), name


def test_presenter_charts_get_projector_size_text(monkeypatch):
    """In the presenter view every axis, legend and facet header reads ≥ 14 px from the back of the room."""
    from ui import present

    spec = {"mark": "line", "config": {"axis": {"labelFontSize": 9, "grid": False}}}
    monkeypatch.setattr(present, "presenting", lambda: False)
    assert present.chart_config(spec) == spec
    monkeypatch.setattr(present, "presenting", lambda: True)
    big = present.chart_config(spec)["config"]
    assert present.CHART_FONT_PX >= 14 and big["axis"]["grid"] is False  # the spec's own settings are kept
    for part in ("axis", "legend", "header"):
        assert big[part]["labelFontSize"] >= 14 and big[part]["titleFontSize"] >= 14
    assert big["title"]["fontSize"] >= 14
