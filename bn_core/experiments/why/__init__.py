"""Why BN Works: four explanations of batch norm, each turned into an experiment, one module per tab.

* :mod:`~bn_core.experiments.why.common`: the net, the data, side-effect-free probes, "did it train?";
* :mod:`~bn_core.experiments.why.noisy`: noisy BN (Santurkar et al. 2018, arXiv:1805.11604, §2.1);
* :mod:`~bn_core.experiments.why.ics`: internal covariate shift as Santurkar et al. define it (§2.2);
* :mod:`~bn_core.experiments.why.landscape`: the loss landscape along the gradient (§3.1, Fig. 4);
* :mod:`~bn_core.experiments.why.scale`: scale invariance of a Linear → BN layer (Ioffe & Szegedy 2015,
  arXiv:1502.03167, §3.3), and :mod:`~bn_core.experiments.why.weights`: what it does to training
  (van Laarhoven 2017, arXiv:1706.05350; Hoffer et al. 2018, arXiv:1803.01814);
* :mod:`~bn_core.experiments.why.jacobian`: layer-to-layer Jacobian singular values at init
  (Pennington et al. 2017, arXiv:1711.04735; Yang et al. 2019, arXiv:1902.08129);
* :mod:`~bn_core.experiments.why.debate`: where the debate stands, from the tabs' results;
* :mod:`~bn_core.experiments.why.quiz`: the check-yourself questions.

Each tab module holds its frozen config, its run function, a frozen summary and the verdicts
(:class:`bn_core.verdict.Verdict`) that the page prints, with their thresholds as named constants.
"""

from bn_core.experiments.why.common import BN, NO_NORM, NOISY_BN, NetOutcome
from bn_core.experiments.why.debate import DebateSummary, debate, evidence
from bn_core.experiments.why.ics import ICSConfig, ICSResult, ICSSummary, run_ics
from bn_core.experiments.why.jacobian import JacobianConfig, JacobianResult, JacobianSummary, run_jacobian
from bn_core.experiments.why.landscape import LandscapeConfig, LandscapeResult, LandscapeSummary, run_landscape
from bn_core.experiments.why.noisy import NoisyConfig, NoisyResult, NoisyView, run_noisy
from bn_core.experiments.why.quiz import questions
from bn_core.experiments.why.scale import ALPHA_GRID, ScaleConfig, ScaleResult, run_scale
from bn_core.experiments.why.weights import WeightSummary

__all__ = [
    "BN",
    "NO_NORM",
    "NOISY_BN",
    "NetOutcome",
    "NoisyConfig",
    "NoisyResult",
    "NoisyView",
    "run_noisy",
    "ICSConfig",
    "ICSResult",
    "ICSSummary",
    "run_ics",
    "LandscapeConfig",
    "LandscapeResult",
    "LandscapeSummary",
    "run_landscape",
    "ScaleConfig",
    "ScaleResult",
    "ALPHA_GRID",
    "run_scale",
    "WeightSummary",
    "JacobianConfig",
    "JacobianResult",
    "JacobianSummary",
    "run_jacobian",
    "DebateSummary",
    "debate",
    "evidence",
    "questions",
]
