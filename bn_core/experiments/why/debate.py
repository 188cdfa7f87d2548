"""Where the debate stands, computed from what the page's tabs actually measured.

Each account of why BN helps gets one :class:`~bn_core.verdict.Verdict`: ``holds`` when
this page's runs support it, and the sentence says what the tabs found, or that a tab
has not run yet. Nothing here is typed in: a tab that finds the opposite of the
literature says so.

Accounts: internal covariate shift (Ioffe & Szegedy 2015, arXiv:1502.03167), tested by the
Noisy BN and ICS tabs as Santurkar et al. 2018 (arXiv:1805.11604) did; the smoother
landscape (Santurkar et al. 2018); larger learning rates (Bjorck et al. 2018,
arXiv:1806.02375); length–direction decoupling and automatic rate tuning (Arora et al.
2019, arXiv:1812.03981); gradient explosion at initialization (Yang et al. 2019,
arXiv:1902.08129).
"""

from __future__ import annotations

from dataclasses import dataclass

from bn_core.experiments.why.common import NetOutcome, leads, untrained
from bn_core.experiments.why.ics import ICSSummary, ics_direction
from bn_core.experiments.why.jacobian import EXPLODING, JacobianSummary, gradient_fate
from bn_core.experiments.why.landscape import LandscapeSummary, is_smoother
from bn_core.experiments.why.noisy import (
    VARIANTS,
    Comparison,
    NoisyResult,
    NoisyView,
    View,
    compare_training,
    noisy_view,
)
from bn_core.experiments.why.weights import WeightSummary, weight_verdict
from bn_core.verdict import Verdict, num

__all__ = ["NoisyEvidence", "DebateSummary", "evidence", "debate", "stability_evidence", "ics_account"]


@dataclass(frozen=True)
class NoisyEvidence:
    """What the Noisy BN tab found, as the debate needs it."""

    comparison: Comparison  # noisy BN vs BN, after the trained-at-all check
    view: NoisyView  # its sentences (stability, takeaway) for the layer shown
    bn: NetOutcome
    plain: NetOutcome
    lr: float
    weights: WeightSummary  # the BN net's weights over training (the Scale invariance tab's records)


def evidence(result: NoisyResult, layer: int = 3, view: View = "unit") -> NoisyEvidence:
    """The Noisy BN tab's findings for the debate (``layer`` and ``view`` as shown on the tab)."""
    plain, bn, noisy = (result.outcome(v) for v in VARIANTS)
    return NoisyEvidence(
        comparison=compare_training(noisy, bn, plain, result.config.lr),
        view=noisy_view(result, layer, view),
        bn=bn,
        plain=plain,
        lr=result.config.lr,
        weights=result.weight_summary,
    )


@dataclass(frozen=True)
class DebateSummary:
    """One verdict per account, in the order the page lists them."""

    ics: Verdict  # internal covariate shift (tabs Noisy BN and ICS)
    smoothness: Verdict  # a smoother landscape (tab Landscape)
    learning_rate: Verdict  # BN allows larger learning rates (tab Noisy BN's nets)
    decoupling: Verdict  # length–direction decoupling (tab Scale invariance)
    explosion: Verdict  # gradient explosion at init (tab Jacobians)

    @property
    def verdicts(self) -> tuple[Verdict, ...]:
        return (self.ics, self.smoothness, self.learning_rate, self.decoupling, self.explosion)


def stability_evidence(noisy: NoisyEvidence | None) -> tuple[str | None, str]:
    """("needed" / "not needed" / None, the sentence): does BN's lead need stable layer inputs?"""
    if noisy is None:
        return None, "The Noisy BN tab could not run with its current controls."
    kind, takeaway = noisy.comparison.kind, noisy.view.takeaway
    if kind in ("untrained", "bn_failed", "no_advantage"):
        return None, f"The Noisy BN tab cannot test it at its current settings: {takeaway.text}"
    if takeaway.holds:
        q = f"{noisy.comparison.quotient:.2f}"  # the quotient as the Noisy BN tab prints it
        return "not needed", (
            f"In the Noisy BN tab a net with far less stable layer inputs keeps BN's lead ({q}× BN's accuracy)."
        )
    if noisy.comparison.verdict.holds:
        return None, "In the Noisy BN tab the noise did not make the layer inputs much less stable: no test."
    return "needed", "In the Noisy BN tab the noise costs BN its lead: here stable inputs do matter."


def _ics_evidence(ics: ICSSummary | None) -> tuple[str | None, str]:
    if ics is None:
        return None, "The ICS tab has not run yet (press its button)."
    if untrained((ics.bn, ics.plain), ics.lr) is not None:
        return None, "The ICS tab's nets did not train at its learning rate."
    direction = ics_direction(ics)
    word = {"less": "*less*", "more": "*more*", "same": "about the same"}[direction]
    return direction, (
        f"The ICS tab measures {word} ICS with BN (cos(G, G′) {ics.cos_bn:.2f} with BN vs {ics.cos_plain:.2f} without)."
    )


_ICS_CONCLUSION = {
    ("not needed", "less"): (
        False,
        "So BN does reduce ICS here, yet a net without stable inputs does as well: reduced shift comes with "
        "BN's benefit but is not what it rests on.",
    ),
    ("not needed", "same"): (False, "Both point away from reduced shift as the mechanism on this problem."),
    ("not needed", "more"): (False, "Both point away from reduced shift as the mechanism on this problem."),
    ("needed", "less"): (True, "Both are consistent with the original story on this run."),
    ("needed", "same"): (False, "Mixed: the noise hurts, yet BN does not reduce ICS as measured here."),
    ("needed", "more"): (False, "Mixed: the noise hurts, yet BN increases ICS as measured here."),
}


def ics_account(noisy: NoisyEvidence | None, ics: ICSSummary | None) -> Verdict:
    """Internal covariate shift: what the Noisy BN and ICS tabs found together."""
    stability, first = stability_evidence(noisy)
    direction, second = _ics_evidence(ics)
    if ics is None:
        holds, end = False, ""
    elif direction is None:
        holds, end = False, "So the ICS measurement cannot weigh in at these settings."
    elif stability is None:
        holds, end = False, "The ICS measurement alone cannot say whether reduced shift is the cause."
    else:
        holds, end = _ICS_CONCLUSION[(stability, direction)]
    return Verdict(
        holds,
        "**Internal covariate shift** was the original motivation (Ioffe & Szegedy 2015, "
        f"[arXiv:1502.03167](https://arxiv.org/abs/1502.03167)), but the paper never measured it. {first} "
        f"{second} {end}".rstrip(),
    )


def _smoothness(land: LandscapeSummary | None) -> Verdict:
    head = "**A smoother landscape** (Santurkar et al. 2018, [arXiv:1805.11604](https://arxiv.org/abs/1805.11604))"
    if land is None:
        return Verdict(False, f"{head}: the Landscape tab has not run yet (press its button).")
    if untrained((land.bn, land.plain), land.lr) is not None:
        return Verdict(False, f"{head}: the Landscape tab's nets did not train at its learning rate.")
    smoother, lead = is_smoother(land), leads(land.bn, land.plain)
    band = f"gradient band {num(land.grad_band_bn)} with BN vs {num(land.grad_band_plain)} without"
    found = "finds BN's landscape smoother along the gradient" if smoother else "finds *no* smoother landscape"
    where = "where BN leads in training" if lead else "while BN has no lead in training"
    caveat = " Its measurements look along the gradient only, and its theory covers a single BN layer."
    return Verdict(smoother and lead, f"{head}: the Landscape tab {found} ({band}) {where}.{caveat}")


def _learning_rate(noisy: NoisyEvidence | None) -> Verdict:
    head = "**Larger learning rates** (Bjorck et al. 2018, [arXiv:1806.02375](https://arxiv.org/abs/1806.02375))"
    if noisy is None:
        return Verdict(False, f"{head}: the Noisy BN tab could not run.")
    bn, plain, lr = noisy.bn, noisy.plain, num(noisy.lr)
    if leads(bn, plain):
        text = f"at η = {lr} in the Noisy BN tab BN trains ({bn.acc_text}) ahead of the plain net ({plain.acc_text})."
        return Verdict(True, f"{head}: {text} Try the learning-rate slider to find where each net stops training.")
    text = f"at η = {lr} in the Noisy BN tab BN has no lead (BN {bn.acc_text}, no norm {plain.acc_text})."
    return Verdict(False, f"{head}: {text}")


def _decoupling(weights: WeightSummary | None) -> Verdict:
    head = (
        "**Length–direction decoupling and automatic rate tuning** (Arora et al. 2019, "
        "[arXiv:1812.03981](https://arxiv.org/abs/1812.03981))"
    )
    if weights is None:
        return Verdict(False, f"{head}: the Scale invariance tab's training records are not available.")
    seen = weight_verdict(weights).holds
    found = "grow while the turn per step falls by itself" if seen else "do not show the effect on this run"
    turn = f"{num(weights.turn_early)}° → {num(weights.turn_late)}° per step"
    return Verdict(seen, f"{head}: in the Scale invariance tab BN's weights {found} ({turn}).")


def _explosion(jac: JacobianSummary | None) -> Verdict:
    head = "**Gradient explosion at initialization** (Yang et al. 2019, [arXiv:1902.08129](https://arxiv.org/abs/1902.08129))"
    if jac is None:
        return Verdict(False, f"{head}: the Jacobians tab could not run with its current controls.")
    fate = gradient_fate(jac.gain_bn)
    found = f"the gradient norm is multiplied by {num(jac.gain_bn)} from the last hidden layer back to the input"
    if fate == "exploding":
        return Verdict(True, f"{head}: in the Jacobians tab {found} with BN: it explodes, as Yang et al. prove.")
    if jac.gain_bn > 1:
        return Verdict(
            False,
            f"{head}: in the Jacobians tab {found} with BN: it grows, the trend Yang et al. prove, but stays "
            f"below the {num(EXPLODING)}× that would count as exploding at this depth.",
        )
    return Verdict(False, f"{head}: in the Jacobians tab {found} with BN ({fate}): this net does not show it.")


def debate(
    noisy: NoisyEvidence | None,
    ics: ICSSummary | None = None,
    land: LandscapeSummary | None = None,
    jac: JacobianSummary | None = None,
) -> DebateSummary:
    """The five accounts, each judged on the tabs' results (None: that tab has not run or could not)."""
    weights = None if noisy is None else noisy.weights
    return DebateSummary(
        ics=ics_account(noisy, ics),
        smoothness=_smoothness(land),
        learning_rate=_learning_rate(noisy),
        decoupling=_decoupling(weights),
        explosion=_explosion(jac),
    )
