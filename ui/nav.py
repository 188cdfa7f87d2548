"""The list of pages: one registry for the router, the landing page and the tests."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    path: str  # file, relative to app.py
    title: str  # shown in the navigation
    icon: str
    url_path: str  # the page's URL: /<url_path>; never a file's stem (see note below)
    blurb: str  # one line for the lesson plan
    min_charts: int = 0  # charts the page shows at default settings (the browser test waits for them)


# The page files live in views/, not pages/: a folder named pages/ next to app.py puts every
# fresh Streamlit server into its legacy "pages directory" mode, which runs a page file
# without the router for a deep link (docs/decisions.md). A URL that names no page (a file's
# stem such as /steps, an old link) falls back to the home page with Streamlit's notice.
PAGES: tuple[PageInfo, ...] = (
    PageInfo(
        "views/welcome.py", "Welcome", ":material/science:", "welcome", "What the lab is, and the four equations."
    ),
    PageInfo(
        "views/steps.py",
        "Normalization Steps",
        ":material/calculate:",
        "normalization-steps",
        "Algorithm 1, step by step, on real numbers.",
        2,
    ),
    PageInfo(
        "views/training.py",
        "Training Comparison",
        ":material/show_chart:",
        "training-comparison",
        "Train with and without BN; Ioffe Fig. 1 live.",
        6,
    ),
    PageInfo(
        "views/batch_size.py",
        "Batch-Size Sensitivity",
        ":material/casino:",
        "batch-size",
        "Noisy batch statistics; BN vs GN/LN.",
        2,
    ),
    PageInfo(
        "views/inference.py",
        "Train vs Inference",
        ":material/sync_alt:",
        "train-vs-inference",
        "Running statistics, eval(), and classic bugs.",
        6,
    ),
    PageInfo(
        "views/why.py",
        "Why BN Works",
        ":material/explore:",
        "why-bn-works",
        "Internal covariate shift vs a smoother landscape.",
        3,
    ),
    PageInfo(
        "views/multi_device.py",
        "Multi-device BN",
        ":material/lan:",
        "multi-device",
        "Per-replica vs synchronized statistics.",
        3,
    ),
)
