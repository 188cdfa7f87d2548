"""The sidebar every page shares, below the router's page menu: device badge, torch version, global seed."""

from __future__ import annotations

import copy
import functools
import logging
from collections.abc import Callable

import streamlit as st

from ui import classroom, nav, widgets
from ui.state import Field, PageState

log = logging.getLogger("batchnorm_lab")

GLOBAL = PageState(
    "global",
    [
        Field("seed", 0, "int", 0, 2**31 - 1, label="global seed"),
        Field("present", False, "bool", label="presenter view", omit_default=True),
        Field("slide", 0, "int", 0, 99, label="slide", omit_default=True),
    ],
)


def hand_over(target: st.Page) -> Callable[[], None]:
    """An alias page's body: switch to ``target``, keeping the link's parameters."""

    def alias() -> None:
        st.switch_page(target, query_params=st.query_params.to_dict())

    alias.__name__ = f"alias_to_{target.url_path or 'home'}".replace("-", "_")
    return alias


@functools.cache
def _pages_once() -> tuple[st.Page, ...]:
    pages = {p.path: st.Page(p.path, title=p.title, icon=p.icon, url_path=p.url_path, default=i == 0)
             for i, p in enumerate(nav.PAGES)}  # fmt: skip
    aliases = [st.Page(hand_over(pages[path]), title=name, url_path=name, visibility="hidden")
               for name, path in nav.ALIASES.items()]  # fmt: skip
    return (*pages.values(), *aliases)


def router_pages() -> list[st.Page]:
    """The router's pages (:data:`ui.nav.PAGES`, then the hidden :data:`ui.nav.ALIASES`) for this rerun.

    ``st.Page`` resolves its file on the disk (a realpath walk and a stat per page: 6 % of the server's
    CPU under 30 sessions), so the pages are made once per process. ``st.navigation`` marks the page
    it returns as the one allowed to run, so every rerun gets its own shallow copies."""
    return [copy.copy(page) for page in _pages_once()]


def start_workers_for(url_path: str) -> None:
    """Before this process first imports torch: if the page at ``url_path`` trains on worker processes,
    start their fork server now (:func:`bn_core.fork_server.start_fork_server`), so that it imports
    torch on the other core while this process imports it for the page. Only a head start: where
    it cannot start (no fork server on this platform), the page's own launch reports why."""
    if any(page.launches_workers and page.url_path == url_path for page in nav.PAGES):
        from bn_core.fork_server import start_fork_server

        try:
            start_fork_server()
        except (ValueError, OSError):
            log.warning("the workers' fork server could not start early", exc_info=True)


def render() -> list[str]:
    """Draw the shared sidebar below the router's menu (device, seed, live class); return notices about the
    URL's global keys."""
    import torch

    from bn_core.device import device_label, pick_device

    notices = GLOBAL.load(report_unknown=False)
    with st.sidebar:
        device = pick_device()
        badge = ":material/memory:" if device.type in ("cuda", "mps") else ":material/computer:"
        st.markdown(f"**Device** {badge} `{device_label(device)}`  \n**torch** `{torch.__version__}`")
        widgets.number(
            GLOBAL,
            "seed",
            "Global seed",
            help="Every random draw on every page comes from this seed: same seed, same numbers.",
        )
        st.caption("Same seed + same controls = the same numbers, bitwise on the CPU.")
        classroom.render_panel()
        st.divider()
        st.caption(
            "Sources: [Ioffe & Szegedy 2015](https://arxiv.org/abs/1502.03167) · "
            "[Santurkar et al. 2018](https://arxiv.org/abs/1805.11604) · "
            "[Wu & He 2018](https://arxiv.org/abs/1803.08494)"
        )
    return notices


def seed() -> int:
    """The global seed, as every page should read it."""
    return int(GLOBAL["seed"])


def bump_seed() -> None:
    """Draw a new sample: the next seed (a button callback)."""
    GLOBAL["seed"] = (seed() + 1) % (2**31)
