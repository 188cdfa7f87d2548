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


# Note: because the page files live in pages/, Streamlit's first run of a server process
# (and every AppTest run) starts in the legacy "pages directory" mode. A url_path equal
# to a file's stem (pages/steps.py → "steps") would let that mode run the page file
# directly, skipping app.py (no sidebar, no page config). Distinct url_paths avoid it.
PAGES: tuple[PageInfo, ...] = (
    PageInfo("pages/home.py", "Welcome", "🧪", "welcome", "What the lab is, and the four equations."),
    PageInfo(
        "pages/steps.py",
        "Normalization Steps",
        "🔢",
        "normalization-steps",
        "Algorithm 1, step by step, on real numbers.",
        2,
    ),
    PageInfo(
        "pages/training.py",
        "Training Comparison",
        "📈",
        "training-comparison",
        "Train with and without BN; Ioffe Fig. 1 live.",
        6,
    ),
    PageInfo(
        "pages/batch_size.py",
        "Batch-Size Sensitivity",
        "🎲",
        "batch-size",
        "Noisy batch statistics; BN vs GN/LN.",
        2,
    ),
    PageInfo(
        "pages/inference.py",
        "Train vs Inference",
        "🔁",
        "train-vs-inference",
        "Running statistics, eval(), and classic bugs.",
        6,
    ),
    PageInfo(
        "pages/why.py", "Why BN Works", "🧭", "why-bn-works", "Internal covariate shift vs a smoother landscape.", 3
    ),
    PageInfo(
        "pages/multi_device.py",
        "Multi-device BN",
        "🌐",
        "multi-device",
        "Per-replica vs synchronized statistics.",
        3,
    ),
)
