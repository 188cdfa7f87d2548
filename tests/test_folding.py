"""BN folding: the folded network computes the unfolded eval-mode network's function.

float32: |folded − unfolded| ≤ 1e-6 · max(1, max|output|) on random inputs (the scale-aware form of
1e-6: float32 has 24 bits, so outputs of size 20 cannot agree to 1e-6 absolute); float64: 1e-12.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from bn_core.folding import bn_affine, fold_bn, fold_into_following, fold_into_preceding, has_bn
from bn_core.layers import ManualBatchNorm
from bn_core.models import CNNConfig, MLPConfig, build_model
from bn_core.precise_bn import bn_layers

TOL32, TOL64 = 1e-6, 1e-12


def _randomize_bn(model: nn.Module, gen: torch.Generator) -> None:
    """Trained-looking BN: running statistics far from (0, 1), γ and β far from (1, 0)."""
    with torch.no_grad():
        for bn in bn_layers(model):
            C = bn.running_mean.numel()
            bn.running_mean.copy_(torch.randn(C, generator=gen, dtype=torch.float64) * 2)
            bn.running_var.copy_(torch.rand(C, generator=gen, dtype=torch.float64) * 3 + 0.05)
            bn.weight.copy_(torch.randn(C, generator=gen, dtype=torch.float64))
            bn.bias.copy_(torch.randn(C, generator=gen, dtype=torch.float64))


def _max_diff(model: nn.Module, folded: nn.Module, x: torch.Tensor) -> tuple[float, float]:
    with torch.no_grad():
        ref, out = model.eval()(x), folded(x)
    return float((ref - out).abs().max()), float(ref.abs().max())


def _model(cfg, seed: int, dtype: torch.dtype) -> nn.Module:
    model = build_model(cfg, seed=seed).to(dtype)
    _randomize_bn(model, torch.Generator().manual_seed(100 + seed))
    return model


@pytest.mark.parametrize("backend", ["manual", "torch"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_bn1d_folds_to_1e6_in_float32_and_1e12_in_float64(backend, seed):
    cfg = MLPConfig(depth=3, width=48, activation="tanh", backend=backend)
    for dtype, tol in ((torch.float32, TOL32), (torch.float64, TOL64)):
        model = _model(cfg, seed, dtype)
        folded = fold_bn(model)
        assert not has_bn(folded) and has_bn(model)
        x = torch.randn(256, 64, generator=torch.Generator().manual_seed(seed), dtype=dtype)
        diff, scale = _max_diff(model, folded, x)
        assert diff <= tol * max(1.0, scale), (dtype, diff, scale)
        assert diff > 0 or dtype == torch.float64  # float32 rounding is real: the check is not vacuous


@pytest.mark.parametrize("backend", ["manual", "torch"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_conv_bn2d_folds_to_1e6_in_float32_and_1e12_in_float64(backend, seed):
    cfg = CNNConfig(channels=(8, 16), backend=backend)
    for dtype, tol in ((torch.float32, TOL32), (torch.float64, TOL64)):
        model = _model(cfg, seed, dtype)
        folded = fold_bn(model)
        assert not has_bn(folded)
        assert all(isinstance(b.linear, nn.Conv2d) and isinstance(b.norm, nn.Identity) for b in folded.blocks)
        x = torch.randn(64, 1, 8, 8, generator=torch.Generator().manual_seed(seed), dtype=dtype)
        diff, scale = _max_diff(model, folded, x)
        assert diff <= tol * max(1.0, scale), (dtype, diff, scale)


def test_post_activation_bn_folds_into_the_next_linear():
    model = _model(MLPConfig(depth=3, width=32, placement="after"), 4, torch.float64)
    folded = fold_bn(model)
    x = torch.randn(128, 64, generator=torch.Generator().manual_seed(4), dtype=torch.float64)
    diff, scale = _max_diff(model, folded, x)
    assert diff <= TOL64 * max(1.0, scale)
    assert not has_bn(folded)


def test_cnn_post_activation_bn_before_a_padded_conv_is_refused_with_the_reason():
    model = _model(CNNConfig(placement="after"), 0, torch.float32)
    with pytest.raises(ValueError, match="zero-padded conv"):
        fold_bn(model)


@pytest.mark.parametrize("norm", ["layer", "group"])
def test_per_example_norms_are_not_foldable(norm):
    with pytest.raises(ValueError, match="no constant affine map"):
        fold_bn(build_model(MLPConfig(depth=2, width=32, norm=norm), seed=0))


def test_a_net_without_bn_folds_to_itself():
    model = build_model(MLPConfig(depth=2, width=16, norm="none"), seed=0)
    folded = fold_bn(model)
    x = torch.randn(8, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        assert torch.equal(model.eval()(x), folded(x))


def test_folding_leaves_the_original_untouched_and_in_its_mode():
    model = _model(MLPConfig(depth=2, width=16), 0, torch.float32).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    fold_bn(model)
    assert model.training
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_folded_weights_are_the_formula():
    """W' = γ·W/σ and b' = γ·(b − μ)/σ + β, written out by hand in float64."""
    gen = torch.Generator().manual_seed(9)
    linear = nn.Linear(6, 4, dtype=torch.float64)
    bn = ManualBatchNorm(4).double()
    _randomize_bn(nn.Sequential(bn), gen)
    W, b = linear.weight.detach().clone(), linear.bias.detach().clone()
    gamma, beta, mu = bn.weight.detach(), bn.bias.detach(), bn.running_mean
    sigma = torch.sqrt(bn.running_var + bn.eps)
    fold_into_preceding(linear, bn)
    torch.testing.assert_close(linear.weight.detach(), gamma[:, None] * W / sigma[:, None], rtol=1e-15, atol=1e-15)
    torch.testing.assert_close(linear.bias.detach(), gamma * (b - mu) / sigma + beta, rtol=1e-14, atol=1e-14)


def test_bias_free_layer_and_non_affine_bn():
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(32, 6, generator=gen, dtype=torch.float64)
    linear = nn.Linear(6, 5, bias=False, dtype=torch.float64)
    bn = nn.BatchNorm1d(5, affine=False, dtype=torch.float64).eval()
    with torch.no_grad():
        bn.running_mean.copy_(torch.randn(5, generator=gen, dtype=torch.float64))
        bn.running_var.copy_(torch.rand(5, generator=gen, dtype=torch.float64) + 0.1)
        ref = bn(linear(x))
        s, _t = bn_affine(bn)
        torch.testing.assert_close(s, torch.rsqrt(bn.running_var + bn.eps))  # γ = 1 without affine
        fold_into_preceding(linear, bn)  # the layer gets a bias: β − γ·μ/σ must live somewhere
        torch.testing.assert_close(linear(x), ref, rtol=1e-12, atol=1e-12)


def test_bn_folds_into_the_following_linear():
    gen = torch.Generator().manual_seed(5)
    a = torch.randn(32, 5, generator=gen, dtype=torch.float64)
    bn = ManualBatchNorm(5).double().eval()
    _randomize_bn(nn.Sequential(bn), gen)
    nxt = nn.Linear(5, 3, dtype=torch.float64)
    with torch.no_grad():
        ref = nxt(bn(a))
        fold_into_following(bn, nxt)  # W' = W·diag(s), b' = b + W·t
        torch.testing.assert_close(nxt(a), ref, rtol=1e-12, atol=1e-12)


def test_bn_without_running_stats_is_refused():
    with pytest.raises(ValueError, match="track_running_stats=False"):
        bn_affine(nn.BatchNorm1d(4, track_running_stats=False))


def test_fold_bn_rejects_other_models():
    with pytest.raises(ValueError, match="MLP and SmallCNN"):
        fold_bn(nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3)))


def test_folding_a_trained_float32_net_keeps_every_prediction():
    from bn_core.data import DataConfig, load_dataset
    from bn_core.train import TrainConfig, train

    split = load_dataset(DataConfig("digits"))
    cfg = TrainConfig(model=MLPConfig(depth=2, width=32, activation="relu"), lr=0.1, batch_size=32, steps=60,
                      record_layers=False, record_grads=False, eval_every=60)  # fmt: skip
    model = train(cfg, data=split).model.eval()
    folded = fold_bn(model)
    with torch.no_grad():
        ref, out = model(split.x_test), folded(split.x_test)
    assert torch.equal(ref.argmax(1), out.argmax(1))
    assert float((ref - out).abs().max()) <= TOL32 * max(1.0, float(ref.abs().max()))
    assert not math.isclose(float(ref.abs().max()), 0.0)
