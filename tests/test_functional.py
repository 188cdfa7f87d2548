"""The hand-written BN functions against torch, the oracle, in float64."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from bn_core.functional import (
    batch_norm_backward,
    batch_norm_backward_compact,
    batch_norm_forward,
    batch_norm_inference,
    check_train_batch,
    update_running_stats,
    values_per_channel,
)

SHAPES = [(16, 5), (8, 3, 4, 4), (4, 2, 7)]  # (N, C), (N, C, H, W), (N, C, L)
TOL = 1e-10


def _inputs(shape, gen, dtype=torch.float64):
    C = shape[1]
    x = torch.randn(shape, generator=gen, dtype=dtype) * 3.0 + 1.5
    gamma = torch.randn(C, generator=gen, dtype=dtype)
    beta = torch.randn(C, generator=gen, dtype=dtype)
    return x, gamma, beta


def _reduce_dims(x):
    return (0, *range(2, x.dim()))


@pytest.mark.parametrize("shape", SHAPES)
def test_forward_matches_torch(shape, gen):
    x, gamma, beta = _inputs(shape, gen)
    y, cache = batch_norm_forward(x, gamma, beta, eps=1e-5)
    y_ref = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)
    var_ref, mu_ref = torch.var_mean(x, dim=_reduce_dims(x), unbiased=False)
    assert (y - y_ref).abs().max() < TOL
    assert (cache.mu - mu_ref).abs().max() < TOL
    assert (cache.var - var_ref).abs().max() < TOL
    assert (cache.inv_std - (var_ref + 1e-5).rsqrt()).abs().max() < TOL
    assert cache.x_hat.shape == x.shape and cache.mu.shape == (shape[1],)


@pytest.mark.parametrize("backward", [batch_norm_backward, batch_norm_backward_compact])
@pytest.mark.parametrize("shape", SHAPES)
def test_backward_matches_autograd(shape, backward, gen):
    x, gamma, beta = _inputs(shape, gen)
    dy = torch.randn(shape, generator=gen, dtype=torch.float64)
    x_, g_, b_ = (t.clone().requires_grad_() for t in (x, gamma, beta))
    y_ref = F.batch_norm(x_, None, None, g_, b_, training=True, eps=1e-5)
    dx_ref, dgamma_ref, dbeta_ref = torch.autograd.grad(y_ref, (x_, g_, b_), dy)
    _, cache = batch_norm_forward(x, gamma, beta, eps=1e-5)
    dx, dgamma, dbeta = backward(dy, cache)
    assert (dx - dx_ref).abs().max() < TOL
    assert (dgamma - dgamma_ref).abs().max() < TOL
    assert (dbeta - dbeta_ref).abs().max() < TOL


@pytest.mark.parametrize("shape", SHAPES)
def test_staged_and_compact_backward_agree(shape, gen):
    x, gamma, beta = _inputs(shape, gen)
    dy = torch.randn(shape, generator=gen, dtype=torch.float64)
    _, cache = batch_norm_forward(x, gamma, beta)
    for a, b in zip(batch_norm_backward(dy, cache), batch_norm_backward_compact(dy, cache), strict=True):
        assert (a - b).abs().max() < 1e-12


@pytest.mark.parametrize("shape", SHAPES)
def test_inference_matches_torch_eval(shape, gen):
    x, gamma, beta = _inputs(shape, gen)
    running_mean = torch.randn(shape[1], generator=gen, dtype=torch.float64)
    running_var = torch.rand(shape[1], generator=gen, dtype=torch.float64) + 0.5
    y = batch_norm_inference(x, running_mean, running_var, gamma, beta, eps=1e-3)
    y_ref = F.batch_norm(x, running_mean, running_var, gamma, beta, training=False, eps=1e-3)
    assert (y - y_ref).abs().max() < TOL


def test_inference_accepts_a_batch_of_one(gen):
    x, gamma, beta = _inputs((1, 4), gen)
    y = batch_norm_inference(x, torch.zeros(4, dtype=x.dtype), torch.ones(4, dtype=x.dtype), gamma, beta)
    assert y.shape == (1, 4) and torch.isfinite(y).all()


@pytest.mark.parametrize("momentum", [0.01, 0.1, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("shape", SHAPES)
def test_update_running_stats_matches_torch(shape, momentum, gen):
    x, _, _ = _inputs(shape, gen)
    C = shape[1]
    old_mean = torch.randn(C, generator=gen, dtype=torch.float64)
    old_var = torch.rand(C, generator=gen, dtype=torch.float64) + 0.1
    ref_mean, ref_var = old_mean.clone(), old_var.clone()
    F.batch_norm(x, ref_mean, ref_var, training=True, momentum=momentum)  # updates ref_* in place
    _, cache = batch_norm_forward(x, torch.ones(C, dtype=x.dtype), torch.zeros(C, dtype=x.dtype))
    snapshot = (old_mean.clone(), old_var.clone())
    m = values_per_channel(x)
    new_mean, new_var = update_running_stats(old_mean, old_var, cache.mu_B, cache.var_B, m, momentum)
    assert (new_mean - ref_mean).abs().max() < TOL
    assert (new_var - ref_var).abs().max() < TOL
    assert torch.equal(old_mean, snapshot[0]) and torch.equal(old_var, snapshot[1]), "inputs must not be mutated"


def test_running_var_uses_the_unbiased_estimate():
    x = torch.tensor([[1.0], [3.0]], dtype=torch.float64)  # biased var 1, unbiased var 2
    _, cache = batch_norm_forward(x, torch.ones(1, dtype=x.dtype), torch.zeros(1, dtype=x.dtype))
    assert cache.var.item() == pytest.approx(1.0)
    _, new_var = update_running_stats(torch.zeros(1), torch.zeros(1), cache.mu_B, cache.var_B, m=2, momentum=1.0)
    assert new_var.item() == pytest.approx(2.0)


def test_update_running_stats_rejects_bad_arguments():
    z = torch.zeros(2)
    with pytest.raises(ValueError, match="at least 2"):
        update_running_stats(z, z, z, z, m=1, momentum=0.1)
    with pytest.raises(ValueError, match="momentum"):
        update_running_stats(z, z, z, z, m=4, momentum=1.5)


@pytest.mark.parametrize("shape", [(1, 3), (1, 3, 1), (1, 2, 1, 1)])
def test_one_value_per_channel_is_refused_with_the_reason(shape):
    with pytest.raises(ValueError, match="more than 1 value per channel") as err:
        check_train_batch(torch.zeros(shape))
    assert "variance is 0" in str(err.value)


def test_one_example_with_spatial_positions_is_allowed():
    check_train_batch(torch.zeros(1, 2, 2, 2))  # 4 values per channel: fine, as in torch


def test_the_math_of_a_batch_of_one_erases_the_input(gen):
    x, gamma, beta = _inputs((1, 3), gen)
    y, cache = batch_norm_forward(x, gamma, beta)
    assert torch.equal(cache.x_hat, torch.zeros_like(x))
    assert torch.allclose(y, beta.expand_as(y))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float32_and_float64_are_supported(dtype, gen):
    x, gamma, beta = _inputs((32, 4, 3, 3), gen, dtype=dtype)
    y, cache = batch_norm_forward(x, gamma, beta)
    dx, dgamma, dbeta = batch_norm_backward(torch.ones_like(y), cache)
    assert y.dtype == dx.dtype == dgamma.dtype == dbeta.dtype == dtype
    y_ref = F.batch_norm(x, None, None, gamma, beta, training=True)
    assert (y - y_ref).abs().max() < (1e-4 if dtype == torch.float32 else TOL)


def test_rejects_one_dimensional_input():
    with pytest.raises(ValueError, match="shape"):
        batch_norm_forward(torch.zeros(5), torch.ones(5), torch.zeros(5))


finite = st.floats(min_value=-1e3, max_value=1e3, allow_nan=False)


@settings(max_examples=60, deadline=None)
@given(
    n=st.integers(2, 40),
    c=st.integers(1, 6),
    loc=finite,
    scale=st.floats(1e-3, 1e3),
    gamma=st.floats(-5, 5),
    beta=st.floats(-5, 5),
    eps=st.sampled_from([1e-8, 1e-5, 1e-2, 1.0]),
    seed=st.integers(0, 2**16),
)
def test_output_mean_is_beta_and_std_is_gamma_shrunk_by_eps(n, c, loc, scale, gamma, beta, eps, seed):
    gen = torch.Generator().manual_seed(seed)
    x = loc + scale * torch.randn(n, c, generator=gen, dtype=torch.float64)
    g = torch.full((c,), gamma, dtype=torch.float64)
    b = torch.full((c,), beta, dtype=torch.float64)
    y, cache = batch_norm_forward(x, g, b, eps=eps)
    var = cache.var
    expected_std = abs(gamma) * torch.sqrt(var / (var + eps))
    assert torch.allclose(y.mean(0), b, atol=1e-9 * max(1.0, abs(gamma)) + 1e-9)
    assert torch.allclose(y.std(0, unbiased=False), expected_std, rtol=1e-7, atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(n=st.integers(2, 30), c=st.integers(1, 5), seed=st.integers(0, 2**16), scale=st.floats(0.1, 100))
def test_standardized_output_has_mean_zero_and_unit_biased_variance(n, c, seed, scale):
    gen = torch.Generator().manual_seed(seed)
    x = scale * torch.randn(n, c, generator=gen, dtype=torch.float64) + 7.0
    _, cache = batch_norm_forward(x, torch.ones(c, dtype=x.dtype), torch.zeros(c, dtype=x.dtype), eps=0.0)
    assert torch.allclose(cache.x_hat.mean(0), torch.zeros(c, dtype=x.dtype), atol=1e-10)
    assert torch.allclose(cache.x_hat.var(0, unbiased=False), torch.ones(c, dtype=x.dtype), atol=1e-9)
    assert math.isclose(values_per_channel(x), n)


@pytest.mark.parametrize("shape", [(7, 3), (5, 3, 2, 4), (1, 4, 3)])
def test_channel_sum_is_the_sum_over_every_axis_but_channels(shape, gen):
    from bn_core.functional import channel_sum

    t = torch.randn(shape, generator=gen, dtype=torch.float64)
    assert (channel_sum(t) - t.sum(dim=_reduce_dims(t))).abs().max() < 1e-12
    assert channel_sum(t).shape == (shape[1],)
