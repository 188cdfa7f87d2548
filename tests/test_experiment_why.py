"""Why BN Works experiments: the noisy BN layer, the definitions against direct computations, and the claims.

The verdicts, the debate and the questions get unit tests for both outcomes on small synthetic
summaries (the end of this file), and the questions are checked against the live result for two seeds.

The claims are checked on the page's default configs (small nets on the digits_split, a few seconds each):
noisy BN reaches ≥ 90 % of BN's accuracy while its layer inputs are far less stable; BN's
gradient-predictiveness band is narrower (3 seeds); the scale-invariance identities hold to 1e-6.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn
from torch.autograd.functional import jacobian as autograd_jacobian
from torch.func import jacrev

from bn_core.experiments.why.common import (
    BN,
    NO_NORM,
    NOISY_BN,
    NetOutcome,
    digits_split,
    initial_model,
    loss_and_grads,
    net_config,
    probe_params,
    untrained,
    weight_names,
)
from bn_core.experiments.why.debate import NoisyEvidence, debate, ics_account
from bn_core.experiments.why.ics import (
    ICSConfig,
    ICSHook,
    ICSSummary,
    ics_direction,
    ics_of_step,
    ics_takeaway,
    ics_verdict,
    run_ics,
)
from bn_core.experiments.why.jacobian import (
    JacobianConfig,
    JacobianSummary,
    _model,
    gradient_fate,
    gradient_verdict,
    jacobian_takeaway,
    jacobian_verdict,
    layer_fn,
    run_jacobian,
)
from bn_core.experiments.why.landscape import (
    LandscapeConfig,
    LandscapeSummary,
    eta_factors,
    landscape_takeaway,
    landscape_verdict,
    probe_landscape,
    run_landscape,
)
from bn_core.experiments.why.noisy import (
    NoisyConfig,
    NoisyView,
    compare_training,
    instability,
    noisy_takeaway,
    noisy_view,
    run_noisy,
    stability_verdict,
)
from bn_core.experiments.why.quiz import questions
from bn_core.experiments.why.scale import (
    ALPHA_GRID,
    BACKENDS,
    ScaleConfig,
    identity_rows,
    run_scale,
    scale_check,
    scale_verdict,
    turn_verdict,
)
from bn_core.experiments.why.weights import WeightSummary, weight_verdict
from bn_core.layers import ManualBatchNorm
from bn_core.models import MLPConfig, build_mlp
from bn_core.noisy_bn import NoisyBatchNorm, NoisyBNFactory, check_noise
from bn_core.train import train

# ---------------------------------------------------------------------------
# The noisy BN layer
# ---------------------------------------------------------------------------


def _noisy(n_mu=2.0, n_sigma=4.0, C=6, backend=ManualBatchNorm, seed=3):
    return NoisyBatchNorm(backend(C).double(), n_mu, n_sigma, seed=seed, layer=1).train()


def test_noisy_bn_is_bn_times_s_plus_b_with_a_fresh_draw_every_step(gen):
    x = torch.randn(32, 6, generator=gen, dtype=torch.float64)
    layer, plain = _noisy(), ManualBatchNorm(6).double().train()
    for step in range(3):
        s, b = layer.draw(step, 6)
        assert ((s**2 >= 1) & (s**2 <= 4)).all() and (b.abs() <= 2).all()
        torch.testing.assert_close(layer(x), plain(x) * s + b, rtol=0, atol=1e-15)
        assert int(layer.noise_step) == step + 1
    assert not torch.equal(layer.draw(0, 6)[1], layer.draw(1, 6)[1]), "the noise changes every step"
    torch.testing.assert_close(layer.bn.running_mean, plain.running_mean)  # BN inside updates as usual


def test_noise_is_off_in_eval_mode_and_at_zero_strength(gen):
    x = torch.randn(16, 6, generator=gen, dtype=torch.float64)
    layer = _noisy().eval()
    torch.testing.assert_close(layer(x), layer.bn(x), rtol=0, atol=0)
    quiet, plain = _noisy(0.0, 1.0), ManualBatchNorm(6).double().train()
    assert torch.equal(quiet(x), plain(x))


def test_restoring_the_buffers_replays_the_same_noise(gen):
    """What lets the engine's probe forward pass leave the training noise sequence untouched."""
    x = torch.randn(16, 6, generator=gen, dtype=torch.float64)
    layer = _noisy(backend=nn.BatchNorm1d)
    saved = {k: v.clone() for k, v in layer.state_dict().items()}
    first = layer(x)
    layer.load_state_dict(saved)
    assert torch.equal(layer(x), first)


def test_noisy_bn_handles_images_and_gradients(gen):
    layer = NoisyBNFactory(1.0, 2.0, seed=0, spatial=True, backend="torch")(4).double()
    x = torch.randn(8, 4, 3, 3, generator=gen, dtype=torch.float64, requires_grad=True)
    y = layer(x)
    s, b = layer.draw(0, 4)
    torch.testing.assert_close(y, layer.bn(x.detach()).mul(s.view(1, 4, 1, 1)).add(b.view(1, 4, 1, 1)))
    y.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_factory_gives_every_layer_its_own_noise_stream():
    factory = NoisyBNFactory(1.0, 3.0, seed=0)
    first, second = factory(5), factory(5)
    assert (first.layer, second.layer) == (1, 2)
    assert not torch.equal(first.draw(0, 5)[0], second.draw(0, 5)[0])


@pytest.mark.parametrize(("n_mu", "n_sigma"), [(-0.1, 2.0), (1.0, 0.5), (float("nan"), 2.0), (1.0, float("inf"))])
def test_invalid_noise_strengths_are_refused(n_mu, n_sigma):
    with pytest.raises(ValueError, match="noise"):
        check_noise(n_mu, n_sigma)


# ---------------------------------------------------------------------------
# Experiment 1: noisy BN (and the weight records of the scale-invariance tab)
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def noisy_default():
    return run_noisy(NoisyConfig())


@pytest.mark.slow
def test_noisy_bn_trains_about_as_well_as_bn_and_better_than_no_bn(noisy_default):
    acc = {o.variant: o.final_test_acc for o in noisy_default.outcomes}
    assert acc[NOISY_BN] >= 0.9 * acc[BN], acc
    assert acc[NOISY_BN] > acc[NO_NORM] + 0.3, acc


@pytest.mark.slow
def test_noisy_bn_layer_inputs_are_far_less_stable(noisy_default):
    jumps = instability(noisy_default.layers, "unit").pivot(index="layer", columns="variant", values="median_jump")
    assert (jumps[NOISY_BN] > 3 * jumps[[BN, NO_NORM]].max(axis=1)).all(), jumps


@pytest.mark.slow
def test_bn_weights_only_grow_and_turn_less_and_less(noisy_default):
    w = noisy_default.weights
    wide = w.pivot_table(index=["variant", "layer", "step"], columns="metric", values="value")
    bn, plain = wide.loc[BN], wide.loc[NO_NORM]
    for _, per_layer in bn.groupby(level="layer"):
        assert (np.diff(per_layer["weight_norm"].to_numpy()) > -1e-5).all(), "‖W‖ never shrinks under BN + SGD"
        turn = per_layer["angle_deg"].to_numpy()
        assert turn[-20:].mean() < turn[:5].mean() / 3
    assert bn["norm_gap"].mean() < 1e-5 < 1e-3 < plain["norm_gap"].mean()


def test_noise_off_makes_the_noisy_net_the_bn_net_bitwise():
    r = run_noisy(NoisyConfig(n_mu=0.0, n_sigma=1.0, steps=20, stats_every=10))
    c, lay = r.curves, r.layers
    for frame in (c, lay):
        a = frame[frame["variant"] == BN].drop(columns="variant").reset_index(drop=True)
        b = frame[frame["variant"] == NOISY_BN].drop(columns="variant").reset_index(drop=True)
        pd.testing.assert_frame_equal(a, b, check_exact=True)


def test_noisy_experiment_is_bitwise_reproducible():
    cfg = NoisyConfig(steps=20, stats_every=10, seed=5)
    first, second = run_noisy(cfg), run_noisy(cfg)
    for name in ("curves", "layers", "weights", "jumps"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name), check_exact=True)
    assert first.outcomes == second.outcomes and first.weight_summary == second.weight_summary
    other = run_noisy(replace(cfg, seed=6)).layers
    assert not other["value"].equals(first.layers["value"])


# ---------------------------------------------------------------------------
# Experiment 2: ICS (Santurkar et al., Def. 2.1)
# ---------------------------------------------------------------------------


def _tiny(norm: str, depth: int = 3, width: int = 7):
    cfg = MLPConfig(in_features=64, n_classes=10, depth=depth, width=width, norm=norm, activation="tanh")
    return build_mlp(cfg, seed=1).double().train()


def _batch(n: int = 24):
    split = digits_split()
    return split.x_train[:n].double(), split.y_train[:n]


def _grad_by_hand(model: nn.Module, state: dict, x, y, name: str) -> torch.Tensor:
    """∇ of the cross-entropy w.r.t. one parameter, by loading ``state`` into a copy and calling backward()."""
    clone = copy.deepcopy(model)
    clone.load_state_dict(state, strict=False)
    nn.functional.cross_entropy(clone(x), y).backward()
    return dict(clone.named_parameters())[name].grad


@pytest.mark.parametrize("norm", ["batch", "none"])
def test_ics_matches_a_direct_computation(norm):
    model, (x, y) = _tiny(norm), _batch()
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    after = {n: p.detach().clone() for n, p in model.named_parameters()}
    rows = {(layer, m): v for layer, m, v in ics_of_step(model, before, after, x, y)}
    names = weight_names(model)
    assert sorted({layer for layer, _ in rows}) == [2, 3, 4]  # layer 1 has no earlier layers; 4 = the head
    for i, name in enumerate(names[1:], start=2):
        G = _grad_by_hand(model, before, x, y, name)
        earlier = {
            n: after[n] if n.startswith(tuple(f"blocks.{k}." for k in range(i - 1))) else before[n] for n in before
        }
        G_prime = _grad_by_hand(model, earlier, x, y, name)
        assert rows[(i, "l2")] == pytest.approx(float((G - G_prime).norm()), rel=1e-9, abs=1e-15)
        cos = float((G * G_prime).sum() / (G.norm() * G_prime.norm()))
        assert rows[(i, "cos")] == pytest.approx(cos, rel=1e-9)
    assert rows[(2, "l2")] > 0, "updating layer 1 changes layer 2's gradient"


def test_measuring_ics_does_not_change_training():
    """The probes run on copies: curves and running statistics are bitwise those of an unobserved run."""
    cfg = net_config("batch", lr=0.3, steps=12, seed=2, activation="relu", record_layers=False, record_grads=False)
    plain = train(cfg)
    hook = ICSHook(every=3)
    watched = train(cfg, on_step=hook)
    pd.testing.assert_frame_equal(plain.curves, watched.curves, check_exact=True)
    for a, b in zip(plain.model.state_dict().values(), watched.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    assert sorted({row[0] for row in hook.rows}) == [3, 6, 9, 12]


def test_ics_run_records_every_layer_and_rejects_a_bad_spacing():
    r = run_ics(ICSConfig(steps=30, every=10, depth=2))
    assert set(r.ics["layer"]) == {2, 3} and set(r.ics["step"]) == {10, 20, 30}
    assert set(r.ics["variant"]) == {BN, NO_NORM}
    assert r.summary.last_layer == 3 and -1 <= r.summary.cos_bn <= 1
    cos = r.ics[r.ics["metric"] == "cos"]["value"]
    assert ((cos >= -1 - 1e-12) & (cos <= 1 + 1e-12)).all()
    with pytest.raises(ValueError, match="every"):
        run_ics(ICSConfig(steps=30, every=1))


# ---------------------------------------------------------------------------
# Experiment 3: the landscape along the gradient
# ---------------------------------------------------------------------------


def test_eta_grid_runs_from_half_to_four_times_the_learning_rate():
    f = eta_factors(8)
    assert f[0] == pytest.approx(0.5) and f[-1] == pytest.approx(4.0) and (np.diff(f) > 0).all()
    with pytest.raises(ValueError):
        eta_factors(1)


def test_landscape_probe_matches_stepping_a_copy_and_leaves_the_model_alone():
    model, (x, y) = _tiny("batch"), _batch()
    state = copy.deepcopy(model.state_dict())
    rows = {(eta, m): v for eta, m, v in probe_landscape(model, x, y, np.array([0.1, 0.4]))}
    clone = copy.deepcopy(model)
    nn.functional.cross_entropy(clone(x), y).backward()
    g = {n: p.grad.clone() for n, p in clone.named_parameters()}
    g_norm = torch.sqrt(sum((v**2).sum() for v in g.values()))
    for eta in (0.1, 0.4):
        stepped = copy.deepcopy(model)
        with torch.no_grad():
            for n, p in stepped.named_parameters():
                p -= eta * g[n]
        loss = nn.functional.cross_entropy(stepped(x), y)
        loss.backward()
        loss = loss.detach()
        diff = torch.sqrt(sum(((g[n] - p.grad) ** 2).sum() for n, p in stepped.named_parameters()))
        assert rows[(eta, "loss")] == pytest.approx(float(loss), rel=1e-10)
        assert rows[(eta, "grad_diff")] == pytest.approx(float(diff), rel=1e-9)
        assert rows[(eta, "beta")] == pytest.approx(float(diff / (eta * g_norm)), rel=1e-9)
    for key, value in model.state_dict().items():  # running statistics and weights untouched
        assert torch.equal(value, state[key]), key


def test_functional_loss_equals_the_module_loss():
    model, (x, y) = _tiny("batch"), _batch()
    params, buffers = probe_params(model)
    loss, grads = loss_and_grads(model, params, buffers, x, y)
    clone = copy.deepcopy(model)
    expected = nn.functional.cross_entropy(clone(x), y)
    expected.backward()
    assert float(loss) == pytest.approx(float(expected.detach()), rel=1e-12)
    for name, p in clone.named_parameters():
        torch.testing.assert_close(grads[name], p.grad, rtol=1e-10, atol=1e-12)


def test_initial_model_is_the_model_training_starts_from():
    cfg = net_config("batch", lr=0.3, steps=1, seed=4)
    split = digits_split()
    start = initial_model(cfg, split)
    trained = train(replace(cfg, lr=1e-300), data=split).model  # one step too small to move a float32 weight
    for (name, a), b in zip(start.named_parameters(), trained.parameters(), strict=True):
        assert torch.equal(a, b), name


@pytest.mark.slow
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bn_gradient_predictiveness_band_is_narrower(seed):
    r = run_landscape(LandscapeConfig(seed=seed))
    s = r.summary
    assert s.grad_band_bn < s.grad_band_plain / 3, s
    assert s.beta_bn < s.beta_plain, s
    assert r.verdicts.measured.holds
    assert set(r.bands["step"]) == {int(s) for s in np.linspace(0, 200, 10).round()}


# ---------------------------------------------------------------------------
# Experiment 4: scale invariance
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("alpha", [ALPHA_GRID[0], 0.1, 1.0, 10.0, ALPHA_GRID[-1]])
def test_scale_invariance_identities_hold_to_1e_6(backend, alpha):
    c = scale_check(ScaleConfig(), backend, alpha)
    assert c.output_max_abs_diff < 1e-6
    assert c.grad_rel_err < 1e-6
    assert c.orthogonality < 1e-6
    assert c.grad_norm_alpha * alpha == pytest.approx(c.grad_norm_1, rel=1e-6)
    if alpha >= 0.1:  # below, one step of η = 0.1 turns w by ~90°, where tan is ill-conditioned
        assert c.turn_rel_err < 1e-6


def test_with_the_default_eps_small_weights_break_the_invariance():
    c = scale_check(ScaleConfig(eps=1e-5), "torch", 0.01)
    assert c.output_max_abs_diff > 1e-2 and c.grad_rel_err > 1e-2


def test_scale_run_covers_the_grid_for_both_backends():
    r = run_scale(ScaleConfig(alpha=ALPHA_GRID[3]))
    assert [c.backend for c in r.checks] == list(BACKENDS)
    grads = r.sweep[(r.sweep["metric"] == "grad_norm_alpha")].pivot(index="alpha", columns="backend", values="value")
    np.testing.assert_allclose(grads["manual"], grads["torch"], rtol=1e-10)
    np.testing.assert_allclose(grads.index * grads["manual"], grads["manual"].loc[1.0], rtol=1e-6)  # ∝ 1/α
    with pytest.raises(ValueError):
        run_scale(ScaleConfig(alpha=-1.0))


# ---------------------------------------------------------------------------
# Experiment 5: Jacobians
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("bn", [True, False])
def test_jacrev_agrees_with_autograd_and_bn_couples_the_batch(bn):
    cfg = JacobianConfig(depth=3, width=5, batch=6)
    model = _model(cfg, bn, digits_split())
    h = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f = layer_fn(model, 2, bn)
    J = jacrev(f)(h)  # (N, W, N, W)
    torch.testing.assert_close(J, autograd_jacobian(f, h), rtol=1e-10, atol=1e-12)
    off_diagonal = J[0, :, 1, :].abs().max()
    assert (off_diagonal > 1e-6) if bn else (off_diagonal == 0)


def test_jacobian_experiment_shows_erased_directions_and_vanishing_gradients():
    cfg = JacobianConfig()
    r = run_jacobian(cfg)
    counts = r.layers[r.layers["metric"].isin(["erased", "crushed"])]
    counts = counts.pivot_table(index="layer", columns=["metric", "variant"], values="value")
    assert (counts[("erased", BN)] == cfg.width).all()  # a shift of one unit for the whole batch: exactly 0
    assert (counts[("crushed", BN)] == 2 * cfg.width).all()  # and its scale: ≈ 0, only ε keeps it
    assert (counts[("erased", NO_NORM)] == 0).all()
    flagged = r.svals.groupby(["variant", "layer"])["erased"].sum()
    assert (flagged.loc[BN] == cfg.width).all() and (flagged.loc[NO_NORM] == 0).all()
    sv = r.svals.groupby(["variant", "layer"]).size()
    assert (sv == cfg.batch * cfg.width).all()
    g = r.grads.pivot(index="layer", columns="variant", values="value")
    assert g.loc[0, NO_NORM] / g.loc[cfg.depth, NO_NORM] < 0.1  # tanh without BN: vanishing toward the input
    assert g.loc[0, BN] / g.loc[cfg.depth, BN] > 1  # with BN: it grows toward the input (Yang et al. 2019)
    assert r.summary.gain_plain == pytest.approx(g.loc[0, NO_NORM] / g.loc[cfg.depth, NO_NORM])
    assert r.summary.erased_bn == cfg.width and r.summary.crushed_bn == 2 * cfg.width


@pytest.mark.parametrize(
    ("changes", "phrase"),
    [({"batch": 1}, "at least 2"), ({"batch": 64, "width": 64}, "N·W"), ({"depth": 1}, "Depth")],
)
def test_invalid_jacobian_configs_are_explained(changes, phrase):
    with pytest.raises(ValueError, match=phrase):
        run_jacobian(replace(JacobianConfig(), **changes))


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
