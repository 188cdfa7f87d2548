"""The sidebar every page shares: device badge, torch version, global seed, links."""

from __future__ import annotations

import streamlit as st

from ui import classroom, widgets
from ui.state import Field, PageState

GLOBAL = PageState("global", [Field("seed", 0, "int", 0, 2**31 - 1, label="global seed")])


def render() -> list[str]:
    """Draw the shared sidebar; return notices about the global URL parameters."""
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
