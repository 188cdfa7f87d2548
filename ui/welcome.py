"""Text and small widgets for the landing page."""

from __future__ import annotations

import streamlit as st

from ui.nav import PAGES

INTRO = """
Batch normalization (Ioffe & Szegedy, 2015) normalizes each feature of a layer's
input with the mean and variance of the current mini-batch, then lets the network
rescale it with learned γ and β. This lab teaches it through **real computation**:
BN is implemented by hand from the paper's equations (forward and backward) and
checked against PyTorch, the networks are really trained, the running statistics
really exist and the train/eval switch really changes the computation.

For a mini-batch $\\mathcal{B} = \\{x_1, \\dots, x_m\\}$ of one feature, Algorithm 1 is:
"""

EQUATIONS = (
    (r"\mu_\mathcal{B} = \frac{1}{m}\sum_{i=1}^{m} x_i", "mini-batch mean (`mu_B`)"),
    (r"\sigma^2_\mathcal{B} = \frac{1}{m}\sum_{i=1}^{m} (x_i - \mu_\mathcal{B})^2", "mini-batch variance (`var_B`)"),
    (r"\hat{x}_i = \frac{x_i - \mu_\mathcal{B}}{\sqrt{\sigma^2_\mathcal{B} + \epsilon}}", "normalize (`x_hat`)"),
    (r"y_i = \gamma\,\hat{x}_i + \beta", "scale and shift (`gamma`, `beta`)"),
)

REAL = """
- **Nothing is simulated.** Every curve comes from a network trained in this app
  (or cached from the same code), every number on screen is computed.
- **Same seed, same numbers.** The global seed in the sidebar drives every random
  draw; results are bitwise reproducible on the CPU.
- **Shareable.** Every page's controls live in the URL: the *Share* button gives a
  link that opens the same view for your students.
- **Runs on the GPU** when the server has one (see the device badge in the sidebar).
"""


def equations() -> None:
    """The four steps of Algorithm 1, with the code's names beside them."""
    for i, (tex, caption) in enumerate(EQUATIONS, start=1):
        left, right = st.columns([3, 2], vertical_alignment="center")
        left.latex(tex)
        right.caption(f"Step {i}: {caption}")


def lesson_plan() -> None:
    """The order to teach in: per page its minutes, goals and prerequisites, and links to open it
    normally or in the presenter view."""
    total = sum(info.minutes for info in PAGES[1:])
    st.markdown(
        f"About **{total} minutes** in this order. Each page ends with check-yourself questions; open a "
        "*Live class* in the sidebar to see your students' answers as they come in."
    )
    for number, info in enumerate(PAGES[1:], start=1):
        with st.container(border=True):
            head, present = st.columns([4, 1], vertical_alignment="center")
            head.page_link(info.path, label=f"{number}. {info.title} · {info.minutes} min", icon=info.icon)
            present.page_link(info.path, label="Present", icon=":material/slideshow:", query_params={"present": "1"})
            goals = "; ".join(info.goals)
            st.markdown(f"{info.blurb} **After it, students can** {goals}.  \n*Before it:* {info.prereq}.")
