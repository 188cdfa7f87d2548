"""Every page runs in AppTest without an exception; the router, sidebar and URL state work."""

from __future__ import annotations

import json

import pytest

from tests.conftest import ROOT
from tests.helpers import alerts, assert_clean, chart_tables, charts, open_page
from ui.nav import PAGES

MAX_CHART_ROWS = 5_000  # charts get pre-binned / thinned data, never raw tensors


def _has_tooltip(spec: object) -> bool:
    if isinstance(spec, dict):
        mark = spec.get("mark")
        if "tooltip" in (spec.get("encoding") or {}) or (isinstance(mark, dict) and mark.get("tooltip")):
            return True
        return any(_has_tooltip(v) for v in spec.values())
    return isinstance(spec, list) and any(_has_tooltip(v) for v in spec)


@pytest.mark.parametrize("info", PAGES, ids=[p.url_path for p in PAGES])
def test_every_page_runs_clean_with_tooltips_and_prebinned_charts(info):
    at = open_page(info.path)
    assert_clean(at)
    assert at.title, "every page has a title"
    assert not alerts(at, "error"), alerts(at, "error")
    assert len(charts(at)) >= info.min_charts
    for chart in charts(at):
        assert _has_tooltip(json.loads(chart.proto.spec)), chart.proto.spec[:200]
        assert 0 < sum(table.num_rows for table in chart_tables(chart)) <= MAX_CHART_ROWS


def test_landing_page_has_the_four_equations_and_the_lesson_plan():
    at = open_page()
    assert_clean(at)
    latex = [el.value for el in at.latex]
    assert len(latex) == 4
    assert any(r"\mu_\mathcal{B}" in t for t in latex) and any(r"\gamma\,\hat{x}_i + \beta" in t for t in latex)
    links = [el for el in at.get("page_link") if el.proto.label.startswith(tuple("123456789"))]
    assert len(links) == len(PAGES) - 1  # one per page of the lesson plan, in teaching order
    presents = [el for el in at.get("page_link") if el.proto.label == "Present"]
    assert len(presents) == len(PAGES) - 1 and all("present=1" in el.proto.query_string for el in presents)


def test_sidebar_shows_device_torch_and_seed():
    at = open_page()
    text = " ".join(el.value for el in at.sidebar.markdown)
    assert "cpu" in text and "torch" in text
    assert at.sidebar.number_input[0].label == "Global seed"


def test_global_seed_round_trips_through_the_url():
    at = open_page("views/steps.py", query={"seed": "42"})
    assert at.sidebar.number_input[0].value == 42
    assert at.query_params["seed"] == "42"


def test_tampered_global_seed_is_clamped_with_a_notice():
    at = open_page(query={"seed": "-5"})
    assert_clean(at)
    assert at.sidebar.number_input[0].value == 0
    assert any("global seed" in w and "clamped" in w for w in alerts(at, "warning"))


def test_no_pages_folder_next_to_the_router():
    """A pages/ folder beside app.py would start every fresh server in Streamlit's legacy
    pages-directory mode, where a deep link runs a page file without the router."""
    assert not (ROOT / "pages").exists()
    assert all(info.path.startswith("views/") for info in PAGES)


def _slide_containers(at) -> list[str]:
    found: list[str] = []

    def walk(node) -> None:
        block_id = str(getattr(getattr(node, "proto", None), "id", ""))
        if "bn-slide-" in block_id:
            found.append(block_id)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at._tree)
    return found


def test_sections_get_a_slide_container_only_in_presenter_view():
    """Outside presenter view a section's container would only be one more message per rerun."""
    assert _slide_containers(open_page("views/steps.py")) == []
    assert len(_slide_containers(open_page("views/steps.py", query={"present": "1"}))) >= 5


def test_the_router_makes_its_pages_once_and_hands_each_rerun_its_own_copies():
    from ui import nav, sidebar

    sidebar._pages_once.cache_clear()
    at = open_page(PAGES[1].path)
    at.run()
    assert_clean(at)
    assert sidebar._pages_once.cache_info().misses == 1  # three runs, one set of st.Page objects
    first, second = sidebar.router_pages(), sidebar.router_pages()
    titles = [p.title for p in PAGES] + list(nav.ALIASES)
    assert [p.title for p in first] == [p.title for p in second] == titles
    assert all(a is not b for a, b in zip(first, second, strict=True))
    first[1]._can_be_called = True  # what st.navigation does to the page it returns
    assert not second[1]._can_be_called and not sidebar._pages_once()[1]._can_be_called


def test_the_app_freezes_what_its_first_run_loaded_out_of_the_collector():
    import gc

    open_page()
    assert gc.get_freeze_count() > 50_000  # torch, pandas and Streamlit at least


def test_only_the_default_page_is_requested_without_a_name():
    """One rule for every client that opens a page (the load drivers, Prepare this class): "" is the root."""
    assert PAGES[0].route == "" and PAGES[0].url_path == "index"
    assert [info.route for info in PAGES[1:]] == [info.url_path for info in PAGES[1:]]
    assert all(info.route for info in PAGES[1:])
