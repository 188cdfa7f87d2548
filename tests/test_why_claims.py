"""Why BN Works claims: every verdict and debate sentence for both outcomes, and the live questions.

The verdicts get unit tests on small synthetic summaries; the questions are checked against
the live result for two seeds. (The experiments themselves: tests/test_experiment_why.py.)
"""

from __future__ import annotations

import re

import pytest

from bn_core.experiments.why.common import (
    BN,
    NO_NORM,
    NOISY_BN,
    NetOutcome,
    untrained,
)
from bn_core.experiments.why.debate import NoisyEvidence, debate, ics_account
from bn_core.experiments.why.ics import (
    ICSSummary,
    ics_direction,
    ics_takeaway,
    ics_verdict,
)
from bn_core.experiments.why.jacobian import (
    JacobianSummary,
    gradient_fate,
    gradient_verdict,
    jacobian_takeaway,
    jacobian_verdict,
)
from bn_core.experiments.why.landscape import (
    LandscapeSummary,
    landscape_takeaway,
    landscape_verdict,
)
from bn_core.experiments.why.noisy import (
    NoisyConfig,
    NoisyView,
    compare_training,
    noisy_takeaway,
    noisy_view,
    run_noisy,
    stability_verdict,
)
from bn_core.experiments.why.quiz import questions
from bn_core.experiments.why.scale import (
    ScaleConfig,
    identity_rows,
    run_scale,
    scale_check,
    scale_verdict,
    turn_verdict,
)
from bn_core.experiments.why.weights import WeightSummary, weight_verdict

# ---------------------------------------------------------------------------
# Verdicts: every sentence with a number or a verdict, for both outcomes
# ---------------------------------------------------------------------------


def _net(variant: str, acc: float, diverged_at: int | None = None) -> NetOutcome:
    nan = float("nan")
    return NetOutcome(variant, nan if diverged_at else acc, nan if diverged_at else acc, diverged_at, 200)


def _printed_ratio(text: str) -> tuple[float, float, float]:
    """The first "q× (a vs b" in a sentence: the quotient and the two numbers printed beside it."""
    q, a, b = re.search(r"(\d+(?:\.\d+)?)× \((\d+(?:\.\d+)?) vs (\d+(?:\.\d+)?)", text).groups()
    return float(q), float(a), float(b)


def test_a_net_at_chance_has_not_trained_and_a_diverged_one_says_where():
    assert _net(BN, 0.95).trained and not _net(BN, 0.102).trained
    gone = _net(NO_NORM, 0.9, diverged_at=17)
    assert not gone.trained and gone.acc_text == "diverged at step 17" and "diverged at step 17" in gone.divergence_note
    assert _net(BN, 0.95).divergence_note is None


def test_untrained_speaks_only_when_no_net_trained():
    nets = (_net(NOISY_BN, 0.102), _net(BN, 0.100), _net(NO_NORM, 0.100))
    verdict = untrained(nets, 100.0)
    assert verdict is not None and not verdict.holds
    assert "No net trained at this learning rate" in verdict.text and "10.2 %" in verdict.text
    assert untrained((_net(BN, 0.95), _net(NO_NORM, 0.1)), 2.0) is None


@pytest.mark.parametrize(
    ("noisy", "bn", "plain", "kind", "holds", "phrase"),
    [
        (0.102, 0.100, 0.100, "untrained", False, "No net trained at this learning rate"),  # issue 12: lr 100
        (0.947, 0.947, 0.153, "compared", True, "as well as"),
        (0.88, 0.95, 0.15, "compared", True, "nearly as well as"),
        (0.60, 0.95, 0.15, "compared", False, "clearly worse than"),
        (0.90, 0.12, 0.11, "bn_failed", False, "BN itself did not train"),
        (0.11, 0.95, 0.15, "noisy_failed", False, "takes BN's advantage away"),
        (0.95, 0.95, 0.95, "no_advantage", False, "no lead for the noise to take"),
    ],
)
def test_noisy_training_verdict_checks_training_first_and_says_both_outcomes(noisy, bn, plain, kind, holds, phrase):
    c = compare_training(_net(NOISY_BN, noisy), _net(BN, bn), _net(NO_NORM, plain), lr=2.0)
    assert (c.kind, c.verdict.holds) == (kind, holds)
    assert phrase in c.verdict.text, c.verdict.text
    if kind == "untrained":
        assert "as well as" not in c.verdict.text and "of its accuracy" not in c.verdict.text
    if kind == "compared":
        q, a, b = _printed_ratio(c.verdict.text)
        assert f"{a / b:.2f}" == f"{q:.2f}" and c.quotient == pytest.approx(a / b)


def test_a_diverged_net_is_reported_in_place_of_its_accuracy():
    c = compare_training(_net(NOISY_BN, 0.0, diverged_at=12), _net(BN, 0.95), _net(NO_NORM, 0.15), lr=30.0)
    assert c.kind == "noisy_failed" and "noisy BN **diverged at step 12**" in c.verdict.text


@pytest.mark.parametrize(
    ("jumps", "holds", "phrase"),
    [((1.5, 0.09, 0.38), True, "far less stable"), ((0.4, 0.09, 0.38), False, "*not* clearly less stable")],
)
def test_stability_verdict_both_outcomes(jumps, holds, phrase):
    v = stability_verdict(3, "unit", *jumps)
    assert v.holds is holds and phrase in v.text
    q, a, b = _printed_ratio(v.text)
    assert f"{a / b:.2f}" == f"{q:.2f}" and b == pytest.approx(0.38)
    assert not stability_verdict(3, "unit", float("nan"), 0.1, 0.2).holds


def test_noisy_takeaway_follows_the_two_verdicts():
    trained = compare_training(_net(NOISY_BN, 0.947), _net(BN, 0.947), _net(NO_NORM, 0.15), 2.0)
    unstable, steady = stability_verdict(3, "unit", 1.5, 0.1, 0.4), stability_verdict(3, "unit", 0.4, 0.1, 0.4)
    assert noisy_takeaway(trained, unstable).holds
    assert "not what BN's benefit rests on" in noisy_takeaway(trained, unstable).text
    assert not noisy_takeaway(trained, steady).holds and "raise the noise" in noisy_takeaway(trained, steady).text
    hurt = compare_training(_net(NOISY_BN, 0.5), _net(BN, 0.95), _net(NO_NORM, 0.15), 2.0)
    assert "costs BN its lead" in noisy_takeaway(hurt, unstable).text
    chance = compare_training(_net(NOISY_BN, 0.1), _net(BN, 0.1), _net(NO_NORM, 0.1), 100.0)
    assert "no net trained" in noisy_takeaway(chance, unstable).text and not noisy_takeaway(chance, unstable).holds


def test_lr_100_trains_no_net_and_the_page_says_so():
    """Issue 12: at lr 100 every net is at chance; the verdict must not claim "as well as BN"."""
    r = run_noisy(NoisyConfig(lr=100.0, steps=50, stats_every=10))
    assert not any(o.trained for o in r.outcomes), r.outcomes
    view = noisy_view(r, 3, "unit")
    assert not view.training.holds and "No net trained at this learning rate" in view.training.text
    assert "as well as" not in view.training.text and not view.takeaway.holds


def _ics(cos_bn, cos_plain, rel_bn, rel_plain, bn=0.98, plain=0.90) -> ICSSummary:
    return ICSSummary(cos_bn, cos_plain, rel_bn, rel_plain, 4, _net(BN, bn), _net(NO_NORM, plain), 0.3)


def test_ics_verdict_both_outcomes_and_untrained():
    less = _ics(0.73, 0.38, 0.5, 0.9)  # the numbers: BN's gradients change less
    assert ics_direction(less) == "less" and ics_verdict(less).holds and "**less**" in ics_verdict(less).text
    more = _ics(0.38, 0.73, 0.9, 0.5)
    assert ics_direction(more) == "more" and not ics_verdict(more).holds and "*increases*" in ics_verdict(more).text
    same = _ics(0.70, 0.72, 0.5, 0.9)  # the measures disagree
    assert ics_direction(same) == "same" and not ics_verdict(same).holds
    chance = _ics(0.73, 0.38, 0.5, 0.9, bn=0.1, plain=0.1)
    assert "No net trained" in ics_verdict(chance).text and not ics_verdict(chance).holds


def test_ics_takeaway_both_outcomes():
    assert ics_takeaway(_ics(0.73, 0.38, 0.5, 0.9)).holds
    assert "does not remove it" in ics_takeaway(_ics(0.73, 0.38, 0.5, 0.9)).text
    higher = ics_takeaway(_ics(0.38, 0.73, 0.9, 0.5))
    assert not higher.holds and "does not predict" in higher.text
    no_lead = ics_takeaway(_ics(0.73, 0.38, 0.5, 0.9, bn=0.95, plain=0.95))
    assert not no_lead.holds and "no lead" in no_lead.text


def _land(grad_bn, grad_plain, beta_bn, beta_plain, bn=0.98, plain=0.90) -> LandscapeSummary:
    return LandscapeSummary(
        grad_bn, grad_plain, 0.1, 5.5, beta_bn, beta_plain, 10, _net(BN, bn), _net(NO_NORM, plain), 0.3
    )


def test_landscape_verdict_and_takeaway_both_outcomes():
    smooth = _land(0.23, 6.3, 3.2, 5.5)
    assert landscape_verdict(smooth).holds and "smoother" in landscape_verdict(smooth).text
    q, a, b = _printed_ratio(landscape_verdict(smooth).text)
    assert f"{a / b:.2f}" == f"{q:.2f}"
    assert landscape_takeaway(smooth).holds
    rough = _land(0.8, 0.2, 4.8, 1.0)
    assert not landscape_verdict(rough).holds and "*not* smoother" in landscape_verdict(rough).text
    assert not landscape_takeaway(rough).holds and "without the effect" in landscape_takeaway(rough).text
    chance = _land(0.23, 6.3, 3.2, 5.5, bn=0.1, plain=0.1)
    assert "No net trained" in landscape_verdict(chance).text


def test_scale_verdicts_both_outcomes():
    exact = run_scale(ScaleConfig())
    assert scale_verdict(exact).holds and "hold to" in scale_verdict(exact).text
    assert turn_verdict(exact).holds and "which follows" in turn_verdict(exact).text
    broken = run_scale(ScaleConfig(eps=1e-5, alpha=0.01))
    assert not scale_verdict(broken).holds and "are off by" in scale_verdict(broken).text
    assert not turn_verdict(broken).holds and "does *not* follow" in turn_verdict(broken).text
    rows = identity_rows(exact)
    assert len(rows) == 5 and all(r.manual < 1e-6 and r.torch < 1e-6 for r in rows[:4])


def _weights(norm_end=9.7, turn_late=1.8, gap_bn=1e-6) -> WeightSummary:
    return WeightSummary(_net(BN, 0.95), 6.5, norm_end, (1, 200), 7.2, turn_late, (4, 20), (180, 200), gap_bn, 4e-3)


def test_weight_verdict_both_outcomes():
    v = weight_verdict(_weights())
    assert v.holds and "grew" in v.text and "shrank by itself" in v.text
    q, a, b = _printed_ratio(v.text)
    assert (a, b) == (7.2, 1.8) and q == pytest.approx(4.0)
    assert not weight_verdict(_weights(norm_end=6.0)).holds and "did *not* grow" in weight_verdict(_weights(6.0)).text
    assert not weight_verdict(_weights(turn_late=9.0)).holds
    assert "above" in weight_verdict(_weights(gap_bn=1e-2)).text


def _jac(median_bn=0.65, crushed_bn=64.0, gain_bn=6.0, gain_plain=0.003) -> JacobianSummary:
    return JacobianSummary(10, 512, median_bn, 0.47, 3.0, 1.0, 32.0, 0.0, crushed_bn, 0.0, gain_bn, gain_plain)


def test_jacobian_verdicts_both_outcomes():
    assert [gradient_fate(g) for g in (0.05, 1.0, 50.0, float("inf"))] == [
        "vanishing",
        "preserved",
        "exploding",
        "exploding",
    ]
    seen = _jac()
    assert not jacobian_verdict(seen).holds and "*not* near an isometry" in jacobian_verdict(seen).text
    assert jacobian_verdict(_jac(median_bn=1.1, crushed_bn=0.0)).holds
    assert gradient_verdict(seen).holds and "(preserved)" in gradient_verdict(seen).text
    assert not gradient_verdict(_jac(gain_bn=50.0)).holds
    t = jacobian_takeaway(seen)
    assert "stops the gradient from vanishing" in t.text and "short of exploding" in t.text and not t.holds
    assert "with and without BN" in jacobian_takeaway(_jac(gain_plain=1.0, gain_bn=1.0)).text


def _evidence(noisy_acc=0.947, jumps=(1.5, 0.1, 0.4), bn=0.947, plain=0.15) -> NoisyEvidence:
    comparison = compare_training(_net(NOISY_BN, noisy_acc), _net(BN, bn), _net(NO_NORM, plain), 2.0)
    stability = stability_verdict(3, "unit", *jumps)
    view = NoisyView(comparison.verdict, stability, noisy_takeaway(comparison, stability))
    return NoisyEvidence(comparison, view, _net(BN, bn), _net(NO_NORM, plain), 2.0, _weights())


def test_the_debate_reports_what_the_ics_tab_measured():
    """Issue 12: the ICS tab finds cos 0.73 with BN vs 0.38 without; the summary must not say "no sign"."""
    line = ics_account(_evidence(), _ics(0.73, 0.38, 0.5, 0.9))
    assert "*less* ICS with BN" in line.text and "0.73" in line.text and "0.38" in line.text
    assert "no sign" not in line.text and "not what it rests on" in line.text and not line.holds
    supports = ics_account(_evidence(noisy_acc=0.5), _ics(0.73, 0.38, 0.5, 0.9))
    assert supports.holds and "consistent with the original story" in supports.text
    waiting = ics_account(_evidence(), None)
    assert "has not run yet" in waiting.text and not waiting.holds
    chance = ics_account(_evidence(noisy_acc=0.1, bn=0.1, plain=0.1), _ics(0.73, 0.38, 0.5, 0.9))
    assert "cannot test it" in chance.text


def test_every_debate_account_follows_its_tab():
    d = debate(_evidence(), _ics(0.73, 0.38, 0.5, 0.9), _land(0.23, 6.3, 3.2, 5.5), _jac(gain_bn=50.0))
    assert [v.holds for v in d.verdicts] == [False, True, True, True, True]
    assert "finds BN's landscape smoother" in d.smoothness.text and "explodes" in d.explosion.text
    other = debate(_evidence(bn=0.15), None, _land(0.8, 0.2, 4.8, 1.0), _jac())
    assert [v.holds for v in other.verdicts] == [False, False, False, True, False]
    assert "has no lead" in other.learning_rate.text and "stays below the 10×" in other.explosion.text
    assert "does not show it" in debate(None, jac=_jac(gain_bn=0.5)).explosion.text
    assert "not run yet" in debate(None).smoothness.text and "could not run" in debate(None).explosion.text


# ---------------------------------------------------------------------------
# Check yourself: the answers are the live numbers (two seeds)
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_questions_answer_with_the_live_numbers(seed):
    r = run_noisy(NoisyConfig(steps=60, seed=seed))
    scale = run_scale(ScaleConfig(seed=seed, alpha=10.0))
    qs = {q.key: q for q in questions(r, scale)}
    assert 3 <= len(qs) <= 5
    test_acc = r.curves[(r.curves["variant"] == NOISY_BN) & (r.curves["metric"] == "test_acc")]["value"]
    assert qs["noisy_acc"].check(round(100 * float(test_acc.iloc[-1]), 1))
    assert not qs["noisy_acc"].check(round(100 * float(test_acc.iloc[-1]), 1) + 2)
    unit = r.layers[(r.layers["metric"] == "unit_p50") & (r.layers["layer"] == 3)].sort_values("step")
    jumps = {v: unit[unit["variant"] == v]["value"].diff().abs().mean() for v in (NO_NORM, BN, NOISY_BN)}
    assert qs["least_stable"].answer == max(jumps, key=jumps.get)
    assert qs["stability_story"].answer in qs["stability_story"].options
    assert qs["scaled_gradient"].check(scale_check(ScaleConfig(seed=seed), "manual", 10.0).grad_norm_alpha)
    bn_acc = r.curves[(r.curves["variant"] == BN) & (r.curves["metric"] == "test_acc")]
    if "bn_target_step" in qs:
        assert qs["bn_target_step"].answer == float(bn_acc[bn_acc["value"] >= 0.9]["step"].iloc[0])


def test_questions_change_with_the_seed():
    first, second = (questions(run_noisy(NoisyConfig(steps=60, seed=s))) for s in (0, 1))
    assert {q.key: q.answer for q in first} != {q.key: q.answer for q in second}
