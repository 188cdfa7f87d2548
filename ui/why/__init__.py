"""Why BN Works page glue, one module per tab (mirroring ``bn_core.experiments.why``).

``shared`` holds the state table, presets and lazy tabs; ``noisy``, ``ics``, ``landscape``,
``scale`` and ``jacobian`` each hold one tab's words, controls, cached run and chart specs;
``debate`` and ``quiz`` the closing sections. ``STATE`` is re-exported for the generic
page tests (``ui.<page>.STATE``).
"""

from ui.why.shared import ALPHA_GRID, INTRO, NOISY, STATE, TABS, render_divergence, run_button, tabs

__all__ = ["ALPHA_GRID", "INTRO", "NOISY", "STATE", "TABS", "render_divergence", "run_button", "tabs"]
