"""Why BN Works, the closing section: where the debate stands, judged on what the tabs measured.

Each account's sentence is a :class:`~bn_core.verdict.Verdict` from
:func:`bn_core.experiments.why.debate.debate`. The Noisy BN and Jacobian experiments run
here if their tabs were not opened (one shared cache entry per seed); ICS and the
landscape count only once their buttons were pressed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from bn_core.experiments.why.debate import DebateSummary, debate, evidence
from bn_core.experiments.why.ics import ICSConfig
from bn_core.experiments.why.jacobian import JacobianConfig
from bn_core.experiments.why.landscape import LandscapeConfig
from bn_core.experiments.why.noisy import NoisyConfig
from ui.cache import cached
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


@cached(max_entries=64, show_spinner="Gathering what the tabs measured…")
def _summary(
    noisy_cfg: NoisyConfig,
    layer: int,
    view: str,
    ics_cfg: ICSConfig | None,
    land_cfg: LandscapeConfig | None,
    jac_cfg: JacobianConfig,
) -> DebateSummary:
    result = _quiet(noisy.compute, noisy_cfg)
    ics_r = None if ics_cfg is None else _quiet(ics.compute, ics_cfg)
    land_r = None if land_cfg is None else _quiet(landscape.compute, land_cfg)
    jac_r = _quiet(jacobian.compute, jac_cfg)
    return debate(
        None if result is None else evidence(result, layer, view),
        None if ics_r is None else ics_r.summary,
        None if land_r is None else land_r.summary,
        None if jac_r is None else jac_r.summary,
    )


def summary() -> DebateSummary:
    """The five accounts, from the tabs' results with the current controls."""
    return _summary(
        noisy.config(),
        int(STATE["layer"]),
        str(STATE["view"]),
        ics.config() if STATE["ics_run"] else None,
        landscape.config() if STATE["land_run"] else None,
        jacobian.config(),
    )
