"""Why BN Works experiments: the noisy BN layer, the definitions against direct computations, and the claims.

The verdicts, the debate and the questions are tested for both outcomes in tests/test_why_claims.py.

The claims are checked on the page's default configs (small nets on the digits_split, a few seconds each):
noisy BN reaches ≥ 90 % of BN's accuracy while its layer inputs are far less stable; BN's
gradient-predictiveness band is narrower (3 seeds); the scale-invariance identities hold to 1e-6.
"""

from __future__ import annotations

import copy
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
    digits_split,
    initial_model,
    loss_and_grads,
    net_config,
    probe_params,
    weight_names,
)
from bn_core.experiments.why.ics import (
    ICSConfig,
    ICSHook,
    ics_of_step,
    run_ics,
)
from bn_core.experiments.why.jacobian import (
    JacobianConfig,
    _model,
    jacobian,
    layer_fn,
    run_jacobian,
    singular_values,
)
from bn_core.experiments.why.landscape import (
    LandscapeConfig,
    eta_factors,
    probe_landscape,
    run_landscape,
)
from bn_core.experiments.why.noisy import (
    NoisyConfig,
    instability,
    run_noisy,
)
from bn_core.experiments.why.scale import (
    ALPHA_GRID,
    BACKENDS,
    ScaleConfig,
    run_scale,
    scale_check,
)
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
def test_jacobian_agrees_with_jacrev_and_autograd_and_bn_couples_the_batch(bn):
    cfg = JacobianConfig(depth=3, width=5, batch=6)
    model = _model(cfg, bn, digits_split())
    h = torch.randn(6, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    f = layer_fn(model, 2, bn)
    J = jacobian(f, h)  # (N, W, N, W)
    assert J.shape == (6, 5, 6, 5)
    torch.testing.assert_close(J, jacrev(f)(h), rtol=1e-13, atol=1e-15)  # torch.func's reverse mode: the oracle
    torch.testing.assert_close(J, autograd_jacobian(f, h), rtol=1e-10, atol=1e-12)
    off_diagonal = J[0, :, 1, :].abs().max()
    assert (off_diagonal > 1e-6) if bn else (off_diagonal == 0)


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("bn", [True, False])
def test_singular_values_by_blocks_equal_the_whole_matrixs(bn, activation):
    """Without BN the N diagonal blocks give the whole matrix's singular values; with BN the whole matrix is used."""
    cfg = JacobianConfig(depth=3, width=6, batch=5, activation=activation)
    model = _model(cfg, bn, digits_split())
    h = torch.randn(5, 6, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    J = jacobian(layer_fn(model, 2, bn), h)
    s = singular_values(J, 5, 6)
    whole = torch.linalg.svdvals(J.reshape(30, 30))
    assert s.shape == (30,) and torch.all(s[:-1] >= s[1:])
    torch.testing.assert_close(s, whole, rtol=1e-12, atol=1e-14)
    if bn:
        assert torch.equal(s, whole)


def test_jacobian_of_a_non_square_map_has_output_then_input_axes():
    A = torch.randn(3, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    J = jacobian(lambda h: torch.tanh(h @ A), torch.ones(2, 3, dtype=torch.float64))  # (2, 4) from (2, 3)
    assert J.shape == (2, 4, 2, 3)
    torch.testing.assert_close(J, autograd_jacobian(lambda h: torch.tanh(h @ A), torch.ones(2, 3, dtype=torch.float64)))


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
