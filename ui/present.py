"""Presenter view: ``?present=1`` on any page.

* One section (``common.section``) at a time, with *Previous* / *Next* and the slide
  number in the link (``slide=k``), so the share link reopens the same slide.
* At most :data:`MAX_BAR_CONTROLS` controls of a slide stay visible; the others
  collapse into one *More controls* popover beside them.
* Charts get projector-size text (:data:`CHART_FONT_PX`), and the sidebar starts closed.

Every section is still computed and drawn on every run, and the hidden ones are only
hidden (CSS on their container key), so each control keeps its value and a slide
change costs no recomputation.
"""

from __future__ import annotations

import contextlib
from typing import Any

import streamlit as st

MAX_BAR_CONTROLS = 3  # visible controls per slide: a projector bar, not a form
CHART_FONT_PX = 16  # axis, legend and title text on a projector (readable from the back: ≥ 14 px)
SLIDE_KEY = "bn-slide-"  # container key prefix; Streamlit gives each container the class st-key-<key>
_DECK = "__deck"


# Phones: nothing may widen the page. An equation or a faceted chart wider than its column
# scrolls inside its own box instead (a chart at container width never needs to).
BASE_CSS = """<style>
.katex-display { overflow-x: auto; overflow-y: hidden; max-width: 100%; }
[data-testid=stVegaLiteChart] { overflow-x: auto; max-width: 100%; }
</style>"""


def base_css() -> None:
    """The layout rules every page gets (drawn once per run by the router)."""
    st.html(BASE_CSS)


def _global():
    from ui.sidebar import GLOBAL  # late: the sidebar's widgets import this module

    return GLOBAL


def presenting() -> bool:
    return bool(_global()["present"])


def _new_deck(title: str = "") -> dict:
    return {"titles": [], "open": None, "depth": 0, "controls": {}, "more": {}, "page": title}


def start(title: str) -> None:
    """At the top of a page run: a fresh deck for this run, and the presenter bar's place."""
    st.session_state[_DECK] = _new_deck(title)
    if presenting():
        st.session_state[_DECK]["bar"] = st.container()


def open_slide(title: str | None) -> Any:
    """What the next section is drawn in, numbered in page order: in presenter view a container
    keyed by its number (which ``finish`` hides unless it is the current slide); otherwise, and
    inside an open slide (a takeaway drawn within a section, say), the place it already is."""
    deck = st.session_state.setdefault(_DECK, _new_deck())
    deck["depth"] += 1
    if deck["depth"] > 1:
        return contextlib.nullcontext()
    deck["open"] = len(deck["titles"])
    deck["titles"].append(title or "")
    if not presenting():  # a slide's container only serves to hide it: one layout message less per section
        return contextlib.nullcontext()
    return st.container(key=f"{SLIDE_KEY}{deck['open']}")


def close_slide() -> None:
    deck = st.session_state.get(_DECK)
    if deck is None:
        return
    deck["depth"] = max(0, deck["depth"] - 1)
    if deck["depth"] == 0:
        deck["open"] = None


def place(where: Any) -> Any:
    """Where a control goes: its own place, or, past the first few of a slide (or of the controls
    above the first slide) in presenter view, the one popover beside them."""
    deck = st.session_state.get(_DECK)
    if not presenting() or deck is None:
        return where
    k = "page" if deck["open"] is None else deck["open"]
    deck["controls"][k] = deck["controls"].get(k, 0) + 1
    # Controls above the first slide stay in sight on every slide: they use up the slides' budget.
    budget = (
        MAX_BAR_CONTROLS if k == "page" else MAX_BAR_CONTROLS - min(deck["controls"].get("page", 0), MAX_BAR_CONTROLS)
    )
    if deck["controls"][k] <= budget:
        return where
    if k not in deck["more"]:
        deck["more"][k] = st.popover("More controls", icon=":material/tune:")
    return deck["more"][k]


def chart_config(spec: dict) -> dict:
    """A Vega-Lite spec with projector-size text in presenter view (unchanged otherwise)."""
    if not presenting():
        return spec
    big = {"labelFontSize": CHART_FONT_PX, "titleFontSize": CHART_FONT_PX}
    config = {**spec.get("config", {})}
    for part in ("axis", "legend", "header"):
        config[part] = {**config.get(part, {}), **big}
    config["title"] = {**config.get("title", {}), "fontSize": CHART_FONT_PX + 2}
    return {**spec, "config": config}


def _go(delta: int | None) -> None:
    state = _global()
    if delta is None:
        state["present"] = False
        state["slide"] = 0
    else:
        state["slide"] = max(0, int(state["slide"]) + delta)


def finish() -> None:
    """At the end of a page run: show only the current slide, and draw the bar with the slide count."""
    deck = st.session_state.get(_DECK)
    if not presenting() or deck is None or not deck["titles"]:
        return
    state, n = _global(), len(deck["titles"])
    k = min(int(state["slide"]), n - 1)
    state["slide"] = k
    hidden = ", ".join(f".st-key-{SLIDE_KEY}{i}" for i in range(n) if i != k)
    st.html(
        f"<style>{hidden} {{display: none !important;}} [data-testid=stMainBlockContainer] "
        "{max-width: 100%; padding-top: 4rem; font-size: 1.2rem;}</style>"
    )
    with deck["bar"]:
        prev, label, nxt, leave = st.columns([1, 4, 1, 1], vertical_alignment="center")
        prev.button("Previous", icon=":material/arrow_back:", on_click=_go, args=(-1,), disabled=k == 0,
                    key="__present:prev", width="stretch")  # fmt: skip
        label.markdown(f"**Slide {k + 1} of {n}** · {deck['titles'][k] or deck.get('page', '')}")
        nxt.button("Next", icon=":material/arrow_forward:", on_click=_go, args=(1,), disabled=k >= n - 1,
                   key="__present:next", width="stretch")  # fmt: skip
        leave.button("Exit", icon=":material/close:", on_click=_go, args=(None,), key="__present:exit",
                     help="Leave the presenter view", width="stretch")  # fmt: skip
