"""The list of pages: one registry for the router, the lesson plan and the tests.

The page files live in views/, not pages/: a folder named pages/ next to app.py puts
every fresh Streamlit server into its legacy "pages directory" mode, which runs a page
file without the router for a deep link (docs/decisions.md). The router also registers
:data:`ALIASES`, the URLs people type (a file's stem, /home, /welcome), as hidden pages
that hand over to the real page; any other unknown URL shows the home page with
Streamlit's "Page not found" notice.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    path: str  # file, relative to app.py
    title: str  # shown in the navigation
    icon: str  # a Material icon: no emoji font needed
    url_path: str  # the page's URL: /<url_path> (the home page is served at /)
    blurb: str  # one line for the navigation's lesson plan
    min_charts: int = 0  # charts the page shows at default settings (the browser test waits for them)
    minutes: int = 0  # class time for the page in the lesson plan
    goals: tuple[str, ...] = ()  # what a student can do after the page
    prereq: str = ""  # what to know first
    launches_workers: bool = False  # its default view trains on worker processes (bn_core.fork_server)

    @property
    def route(self) -> str:
        """The page's name in a URL or a session's page request: "" for the default page (served at /)."""
        return "" if self is PAGES[0] else self.url_path


PAGES: tuple[PageInfo, ...] = (
    PageInfo("views/welcome.py", "Welcome", ":material/science:", "index", "What the lab is, and the lesson plan."),
    PageInfo(
        "views/steps.py",
        "Normalization Steps",
        ":material/calculate:",
        "normalization-steps",
        "Algorithm 1, step by step, on real numbers.",
        7,
        15,
        ("compute μ_B, σ²_B, x̂ and y for a batch by hand", "say what γ and β are for, and what ε does"),
        "means and variances",
    ),
    PageInfo(
        "views/training.py",
        "Training Comparison",
        ":material/show_chart:",
        "training-comparison",
        "Train with and without BN; Ioffe Fig. 1 live.",
        6,
        20,
        ("read a training curve", "explain why BN allows larger learning rates, and where that stops"),
        "gradient descent and a learning rate",
    ),
    PageInfo(
        "views/batch_size.py",
        "Batch-Size Sensitivity",
        ":material/casino:",
        "batch-size",
        "Noisy batch statistics; BN vs GN/LN.",
        2,
        15,
        ("explain why small batches make BN's statistics noisy", "choose GN or LN when batches are small"),
        "Normalization Steps",
    ),
    PageInfo(
        "views/inference.py",
        "Train vs Inference",
        ":material/sync_alt:",
        "train-vs-inference",
        "Running statistics, eval(), and classic bugs.",
        6,
        20,
        ("say what model.eval() changes in a BN layer", "spot the classic BN bugs (eval forgotten, batch of 1)"),
        "Normalization Steps",
    ),
    PageInfo(
        "views/why.py",
        "Why BN Works",
        ":material/explore:",
        "why-bn-works",
        "Internal covariate shift vs a smoother landscape.",
        3,
        20,
        ("weigh the internal-covariate-shift story against the smoothness one, with evidence",),
        "Training Comparison",
    ),
    PageInfo(
        "views/multi_device.py",
        "Multi-device BN",
        ":material/lan:",
        "multi-device",
        "Per-replica vs synchronized statistics.",
        3,
        10,
        ("explain when per-replica BN statistics differ from synchronized ones, and what syncing costs",),
        "Batch-Size Sensitivity",
        launches_workers=True,
    ),
)

# URLs people type, each handed over to a page (by its path): file stems, and names for home.
ALIASES: dict[str, str] = {
    "home": PAGES[0].path,
    "welcome": PAGES[0].path,
    **{info.path.removeprefix("views/").removesuffix(".py"): info.path for info in PAGES[1:]},
}
