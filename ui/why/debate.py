"""Why BN Works, the closing section: where the debate stands, judged on what the tabs measured.

Each account's sentence is a :class:`~bn_core.verdict.Verdict` from
:func:`bn_core.experiments.why.debate.debate`. The Noisy BN and Jacobian experiments run
here if their tabs were not opened (one shared cache entry per seed); ICS and the
landscape count only once their buttons were pressed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import streamlit as st

from bn_core.experiments.why.debate import DebateSummary, debate, evidence
from ui.why import ics, jacobian, landscape, noisy
from ui.why.shared import STATE

T = TypeVar("T")
CLOSING = (
    "Each account above is judged on this page's runs: small nets on 8 × 8 digits, a few hundred steps. "
    "They show what happens on this problem, not what holds in general."
)


def _quiet(fn: Callable[..., T], cfg: object) -> T | None:
    """A cached experiment, or None when its controls make it refuse to run (its own tab says why)."""
    try:
        return fn(cfg)
    except ValueError:
        return None


def summary() -> DebateSummary:
    """The five accounts, from the tabs' results with the current controls."""
    with st.spinner("Gathering what the tabs measured…"):
        result = _quiet(noisy.compute, noisy.config())
        ev = None if result is None else evidence(result, int(STATE["layer"]), str(STATE["view"]))
        ics_r = _quiet(ics.compute, ics.config()) if STATE["ics_run"] else None
        land_r = _quiet(landscape.compute, landscape.config()) if STATE["land_run"] else None
        jac_r = _quiet(jacobian.compute, jacobian.config())
    return debate(
        ev,
        None if ics_r is None else ics_r.summary,
        None if land_r is None else land_r.summary,
        None if jac_r is None else jac_r.summary,
    )
