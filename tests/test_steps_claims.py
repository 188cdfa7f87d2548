"""Normalization Steps: its sentences follow the numbers (both outcomes), its equations print
honest differences, and its check-yourself answers are the live numbers."""

from __future__ import annotations

import numpy as np
import pytest

from bn_core.experiments.steps import StepsConfig, normalized_verdict, run_steps
from bn_core.experiments.steps_quiz import questions
from bn_core.verdict import num, ratio
from tests.helpers import assert_clean, open_page
from ui.quiz import answer_key
from ui.steps import digits_to_show, step_equations


def test_unit_variance_claim_holds_for_an_ordinary_feature():
    r = run_steps(StepsConfig())
    v = normalized_verdict(r, 0)
    assert v.holds and "≈ 1" in v.text
    assert abs(r.x_hat[:, 0].var() - 1) < 0.01


def test_unit_variance_claim_is_withdrawn_when_eps_dominates():
    r = run_steps(StepsConfig(scales=(0.001, 1.0, 1.0), eps=1e-5))
    v = normalized_verdict(r, 0)
    assert not v.holds and "ε dominates" in v.text
    assert num(float(r.x_hat[:, 0].var())) in v.text  # the variance it quotes is the batch's own


def test_equations_never_round_x_minus_mu_to_zero():
    r = run_steps(StepsConfig(means=(2.0, 0.0, 0.0), scales=(0.001, 1.0, 1.0)))
    d = digits_to_show(r.x[:3, 0], float(r.stats.mu_B.iloc[0]))
    assert d > 4
    x_hat_eq = step_equations(r, 0, 0)[2]
    x0, mu = f"{r.x[0, 0]:.{d}g}", f"{r.stats.mu_B.iloc[0]:.{d}g}"
    assert x0 in x_hat_eq and mu in x_hat_eq and x0 != mu
    # as printed, the difference divided by the printed σ has the printed x̂'s sign
    assert np.sign(float(x0) - float(mu)) == np.sign(r.x_hat[0, 0])


def test_numbers_print_readably():
    assert num(1e-6) == "1e-06" and num(8e-16) == "8e-16" and num(0.0306) == "0.0306"
    q, text = ratio(8.44, 2.75, unit="ms")
    assert text.startswith(f"{8.44 / 2.75:.2f}×") and q == pytest.approx(8.44 / 2.75)


@pytest.mark.parametrize("seed", [0, 7])
def test_check_yourself_answers_are_the_live_numbers(seed):
    at = open_page("views/steps.py", query={"seed": str(seed)})
    assert_clean(at)
    r = run_steps(StepsConfig(seed=seed))
    qs = {q.key: q for q in questions(r, 0, 0)}
    assert qs["var_B"].answer == pytest.approx(r.x[:, 0].var(), rel=1e-12)  # numpy's biased variance
    box = at.number_input(key=answer_key("steps", qs["var_B"]))
    box.set_value(round(float(qs["var_B"].answer), 6)).run()
    assert any("Right." in s.value for s in at.success)
    box.set_value(float(qs["var_B"].answer) * 1.5 + 1).run()
    assert any("Not quite." in e.value for e in at.error)
    assert "quiz" not in " ".join(at.query_params)  # answers never reach the link
