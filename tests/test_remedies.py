"""Ghost BN and Batch Renorm against hand-derived expectations, with torch as the oracle in float64."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bn_core.data import DataConfig
from bn_core.layers import ManualBatchNorm
from bn_core.models import MLPConfig, build_mlp
from bn_core.remedies import BatchRenorm, GhostBatchNorm, normalize
from bn_core.train import TrainConfig, train

TOL = 1e-10


def _x(shape, gen, scale=2.0, shift=1.0):
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * scale + shift).requires_grad_()


def _randomize_affine(*layers, gen):
    with torch.no_grad():
        gamma = torch.randn(layers[0].weight.shape, generator=gen, dtype=torch.float64)
        beta = torch.randn(layers[0].bias.shape, generator=gen, dtype=torch.float64)
        for layer in layers:
            layer.weight.copy_(gamma)
            layer.bias.copy_(beta)


def _forward_backward(layer, x, dy):
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    y.backward(dy)
    return y.detach(), x.grad, layer.weight.grad.clone(), layer.bias.grad.clone()


def _assert_same(a, b, tol=TOL):
    for u, v in zip(a, b, strict=True):
        torch.testing.assert_close(u, v, atol=tol, rtol=tol)


def test_normalize_matches_torch_and_its_gradient_is_exact(gen):
    x = _x((7, 3), gen)
    x_hat, mu_B, var_B = normalize(x)
    torch.testing.assert_close(x_hat, F.batch_norm(x, None, None, training=True), atol=TOL, rtol=TOL)
    torch.testing.assert_close(mu_B, x.mean(0).detach())
    torch.testing.assert_close(var_B, x.var(0, unbiased=False).detach())
    assert torch.autograd.gradcheck(lambda t: normalize(t)[0], (x,))


# -- Ghost BN -------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(8, 4), (4, 3, 3, 3)])
def test_ghost_bn_with_one_ghost_batch_is_bn(shape, gen):
    ghost = GhostBatchNorm(shape[1], ghost_batch_size=shape[0]).double()
    bn = ManualBatchNorm(shape[1]).double()
    _randomize_affine(ghost, bn, gen=gen)
    for _ in range(3):  # several steps: the running statistics must follow too
        x, dy = _x(shape, gen), torch.randn(shape, generator=gen, dtype=torch.float64)
        ghost.zero_grad()
        bn.zero_grad()
        _assert_same(_forward_backward(ghost, x, dy), _forward_backward(bn, x, dy))
    torch.testing.assert_close(ghost.running_mean, bn.running_mean, atol=TOL, rtol=TOL)
    torch.testing.assert_close(ghost.running_var, bn.running_var, atol=TOL, rtol=TOL)
    ghost.eval()
    bn.eval()
    x = _x(shape, gen)
    torch.testing.assert_close(ghost(x), bn(x), atol=TOL, rtol=TOL)


@pytest.mark.parametrize(("shape", "g"), [((12, 3), 4), ((12, 3), 2), ((6, 2, 2, 2), 3)])
def test_ghost_bn_is_torch_bn_on_each_ghost_batch(shape, g, gen):
    """Oracle: torch's BN run separately on every chunk of g examples; running stats: the chunks' average."""
    ghost = GhostBatchNorm(shape[1], ghost_batch_size=g).double()
    oracle = (nn.BatchNorm1d if len(shape) == 2 else nn.BatchNorm2d)(shape[1]).double()
    _randomize_affine(ghost, oracle, gen=gen)
    x, dy = _x(shape, gen), torch.randn(shape, generator=gen, dtype=torch.float64)
    got = _forward_backward(ghost, x, dy)
    x_ref = x.detach().clone().requires_grad_()
    chunks = x_ref.split(g)
    y_ref = torch.cat([F.batch_norm(c, None, None, oracle.weight, oracle.bias, training=True) for c in chunks])
    y_ref.backward(dy)
    _assert_same(got, (y_ref.detach(), x_ref.grad, oracle.weight.grad, oracle.bias.grad))
    dims = (0, *range(2, len(shape)))
    mu = torch.stack([c.detach().mean(dims) for c in chunks]).mean(0)
    var = torch.stack([c.detach().var(dims, unbiased=True) for c in chunks]).mean(0)
    torch.testing.assert_close(ghost.running_mean, 0.9 * 0 + 0.1 * mu, atol=TOL, rtol=TOL)
    torch.testing.assert_close(ghost.running_var, 0.9 * 1 + 0.1 * var, atol=TOL, rtol=TOL)


def test_ghost_batch_that_does_not_divide_the_batch_is_refused(gen):
    with pytest.raises(ValueError, match="g=3 must divide the batch size N=8"):
        GhostBatchNorm(4, ghost_batch_size=3)(torch.randn(8, 4, generator=gen))
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        GhostBatchNorm(4, ghost_batch_size=1)(torch.randn(8, 4, generator=gen))
    with pytest.raises(ValueError, match="at least 1"):
        GhostBatchNorm(4, ghost_batch_size=0)


def test_ghost_bn_in_eval_mode_accepts_any_batch(gen):
    layer = GhostBatchNorm(3, ghost_batch_size=4).eval()
    assert layer(torch.randn(5, 3, generator=gen)).shape == (5, 3)  # 4 does not divide 5: only train mode cares


# -- Batch Renorm ------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 3)])
@pytest.mark.parametrize("momentum", [0.1, None])
def test_batch_renorm_with_r_max_1_and_d_max_0_is_bn(shape, momentum, gen):
    brn = BatchRenorm(shape[1], r_max=1.0, d_max=0.0, momentum=momentum).double()
    bn = ManualBatchNorm(shape[1], momentum=momentum).double()
    _randomize_affine(brn, bn, gen=gen)
    for step in range(4):
        x, dy = _x(shape, gen, shift=step), torch.randn(shape, generator=gen, dtype=torch.float64)
        brn.zero_grad()
        bn.zero_grad()
        _assert_same(_forward_backward(brn, x, dy), _forward_backward(bn, x, dy))
    torch.testing.assert_close(brn.running_var, bn.running_var, atol=TOL, rtol=TOL)
    assert int(brn.num_batches_tracked) == 4
    brn.eval()
    bn.eval()
    x = _x(shape, gen)
    torch.testing.assert_close(brn(x), bn(x), atol=TOL, rtol=TOL)


def _reference_renorm(x, gamma, beta, running_mean, running_var, r_max, d_max, eps=1e-5):
    """Ioffe 2017, Algorithm 1, in plain torch ops; r and d detached (stop-gradient)."""
    mu_B = x.mean(0)
    sigma_B = torch.sqrt(x.var(0, unbiased=False) + eps)
    sigma = torch.sqrt(running_var + eps)
    r = torch.clamp(sigma_B / sigma, 1 / r_max, r_max).detach()
    d = torch.clamp((mu_B - running_mean) / sigma, -d_max, d_max).detach()
    return gamma * ((x - mu_B) / sigma_B * r + d) + beta


@pytest.mark.parametrize(("r_max", "d_max"), [(3.0, 5.0), (1.5, 0.2), (100.0, 100.0)])
def test_batch_renorm_matches_the_papers_algorithm(r_max, d_max, gen):
    brn = BatchRenorm(4, r_max=r_max, d_max=d_max).double()
    with torch.no_grad():
        brn.running_mean.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        brn.running_var.copy_(torch.tensor([0.25, 4.0, 1.0, 9.0]))
    _randomize_affine(brn, brn, gen=gen)
    rm, rv = brn.running_mean.clone(), brn.running_var.clone()
    x, dy = _x((8, 4), gen, scale=1.5), torch.randn(8, 4, generator=gen, dtype=torch.float64)
    got = _forward_backward(brn, x, dy)
    gamma = brn.weight.detach().clone().requires_grad_()
    beta = brn.bias.detach().clone().requires_grad_()
    x_ref = x.detach().clone().requires_grad_()
    y_ref = _reference_renorm(x_ref, gamma, beta, rm, rv, r_max, d_max)
    y_ref.backward(dy)
    _assert_same(got, (y_ref.detach(), x_ref.grad, gamma.grad, beta.grad))


def test_unclipped_batch_renorm_normalizes_with_the_running_statistics(gen):
    """r·(x − μ_B)/σ_B + d = (x − μ)/σ when nothing is clipped: training sees inference's normalization."""
    brn = BatchRenorm(3, r_max=1e6, d_max=1e6).double()
    with torch.no_grad():
        brn.running_mean.copy_(torch.tensor([1.0, -2.0, 0.5]))
        brn.running_var.copy_(torch.tensor([2.0, 0.5, 3.0]))
    expected = (brn.running_mean.clone(), brn.running_var.clone())  # before this step updates them
    x = _x((5, 3), gen).detach()
    y = brn(x)
    torch.testing.assert_close(y, (x - expected[0]) / torch.sqrt(expected[1] + 1e-5), atol=TOL, rtol=TOL)


def test_r_and_d_are_clipped(gen):
    brn = BatchRenorm(2, r_max=2.0, d_max=0.5).double()  # running: mean 0, var 1
    x = torch.tensor([[-10.0, 100.0], [10.0, 100.2]], dtype=torch.float64)  # σ_B ≈ 10 and ≈ 0.1; μ_B = 0 and 100.1
    u, mu_B, var_B = normalize(x)
    r, d = brn.correction(mu_B, var_B)
    torch.testing.assert_close(r, torch.tensor([2.0, 0.5], dtype=torch.float64))  # 10 → r_max, 0.1 → 1/r_max
    torch.testing.assert_close(d, torch.tensor([0.0, 0.5], dtype=torch.float64))  # 100.1 → d_max
    y = brn(x)
    torch.testing.assert_close(y, u * r + d)


def test_batch_renorm_refuses_bad_settings_and_a_batch_of_one(gen):
    with pytest.raises(ValueError, match="r_max ≥ 1"):
        BatchRenorm(3, r_max=0.5)
    with pytest.raises(ValueError, match="d_max ≥ 0"):
        BatchRenorm(3, d_max=-1.0)
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        BatchRenorm(3)(torch.randn(1, 3, generator=gen))


# -- as norm_factory ----------------------------------------------------------------


@pytest.mark.parametrize(
    "factory",
    [lambda C: GhostBatchNorm(C, ghost_batch_size=4), lambda C: BatchRenorm(C, r_max=2.0, d_max=1.0)],
    ids=["ghost", "renorm"],
)
def test_remedies_train_through_the_engine_and_load_into_torch_bn(factory):
    cfg = TrainConfig(
        data=DataConfig("blobs", n_samples=200, n_features=8),
        model=MLPConfig(depth=2, width=16, activation="relu"),
        lr=0.2,
        batch_size=16,
        steps=40,
        eval_every=20,
        record_layers=False,
    )
    result = train(cfg, norm_factory=factory)
    assert result.diverged_at is None
    loss = result.metric("loss")
    assert loss.iloc[-5:].mean() < loss.iloc[:5].mean()
    assert result.final_test_acc > 0.5
    norm = result.model.blocks[0].norm
    assert int(norm.num_batches_tracked) == 40
    torch_bn = nn.BatchNorm1d(16)
    torch_bn.load_state_dict(norm.state_dict())  # same parameter and buffer names
    model = build_mlp(MLPConfig(in_features=8, n_classes=4, depth=1, width=16), norm_factory=factory)
    assert type(model.blocks[0].norm) is type(factory(16))


# -- second derivatives ------------------------------------------------------------------


@pytest.mark.parametrize(
    "make",
    [lambda: GhostBatchNorm(3, ghost_batch_size=2), lambda: BatchRenorm(3, r_max=1.5, d_max=0.5, momentum=0.0)],
    ids=["ghost", "renorm"],
)
def test_remedies_are_differentiable_twice(make, gen):
    """Batch Renorm's r and d are stop-gradient by design, so it is checked where both are clipped (locally constant).

    Running statistics far from the batch's (σ = 10, μ = 50) clip r to 1/r_max and d to −d_max;
    momentum 0 keeps them fixed between gradcheck's evaluations.
    """
    layer = make().double()
    with torch.no_grad():
        layer.running_mean.fill_(50.0)
        layer.running_var.fill_(100.0)
    _randomize_affine(layer, gen=gen)
    x = _x((6, 3, 2), gen)

    def f(x, gamma, beta):
        return torch.func.functional_call(layer, {"weight": gamma, "bias": beta}, (x,))

    inputs = (x, layer.weight, layer.bias)
    assert torch.autograd.gradcheck(f, inputs)
    assert torch.autograd.gradgradcheck(f, inputs)
