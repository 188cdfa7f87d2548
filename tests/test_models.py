"""Model builders: identical init across norm kinds, taps, norm injection, torch as the oracle."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch
from torch import nn

from bn_core.layers import ManualBatchNorm
from bn_core.models import CNNConfig, MLPConfig, Tap, build_cnn, build_mlp, build_model


def _shared_affine_params(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every Linear / Conv2d parameter, by name: the layers BN and no-BN nets have in common."""
    return {
        f"{name}.{p_name}": p
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | nn.Conv2d)
        for p_name, p in module.named_parameters()
    }


@pytest.mark.parametrize("placement", ["before", "after"])
def test_same_seed_gives_identical_shared_weights_for_every_norm(placement: str) -> None:
    base = MLPConfig(depth=4, width=24, placement=placement)
    reference = _shared_affine_params(build_mlp(replace(base, norm="none"), seed=7))
    assert len(reference) == 10  # 4 blocks + head, weight and bias each
    for norm in ("batch", "layer", "group"):
        for backend in ("manual", "torch"):
            other = _shared_affine_params(build_mlp(replace(base, norm=norm, backend=backend), seed=7))
            assert other.keys() == reference.keys()
            assert all(torch.equal(other[k], reference[k]) for k in reference), (norm, backend)
    custom = _shared_affine_params(build_mlp(base, seed=7, norm_factory=lambda C: nn.Dropout(0.0)))
    assert all(torch.equal(custom[k], reference[k]) for k in reference)


def test_cnn_same_seed_identical_across_norms() -> None:
    reference = _shared_affine_params(build_cnn(CNNConfig(norm="none"), seed=3))
    for norm in ("batch", "group", "instance", "layer"):
        other = _shared_affine_params(build_cnn(CNNConfig(norm=norm), seed=3))
        assert all(torch.equal(other[k], reference[k]) for k in reference)


def test_seeds_differ_and_global_rng_is_untouched() -> None:
    state = torch.random.get_rng_state()
    a, b = build_mlp(MLPConfig(), seed=0), build_mlp(MLPConfig(), seed=1)
    build_cnn(CNNConfig(), seed=0)
    assert torch.equal(state, torch.random.get_rng_state())
    assert not torch.equal(a.blocks[0].linear.weight, b.blocks[0].linear.weight)


def test_init_follows_default_law_and_init_scale_multiplies_weights_only() -> None:
    one = build_mlp(MLPConfig(width=50), seed=0)
    three = build_mlp(MLPConfig(width=50, init_scale=3.0), seed=0)
    for layer, scaled in zip([*one.blocks, one.head], [*three.blocks, three.head], strict=True):
        lin, lin3 = getattr(layer, "linear", layer), getattr(scaled, "linear", scaled)
        bound = 1.0 / math.sqrt(lin.in_features)
        assert lin.weight.abs().max() <= bound and lin.weight.abs().max() > 0.9 * bound
        assert torch.allclose(lin3.weight, 3.0 * lin.weight) and torch.equal(lin3.bias, lin.bias)


@pytest.mark.parametrize("activation", ["sigmoid", "tanh", "relu"])
def test_taps_are_layer_inputs_and_outputs(activation: str, gen: torch.Generator) -> None:
    model = build_mlp(MLPConfig(depth=3, width=40, activation=activation), seed=0).double()
    x = torch.randn(128, 64, generator=gen, dtype=torch.float64)
    taps: dict[int, Tap] = {}
    logits = model(x, taps)
    assert torch.equal(logits, model(x))  # tapping does not change the computation
    assert sorted(taps) == [1, 2, 3]
    act_fn = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}[activation]
    h = x
    for index, block in enumerate(model.blocks, start=1):
        tap = taps[index]
        assert tap.pre.shape == (128, 40)
        # BN before the activation, γ = 1, β = 0 at init: each unit's input is standardized
        var_B = block.linear(h).var(dim=0, unbiased=False)  # (40,)
        assert torch.allclose(tap.pre.mean(dim=0), torch.zeros(40, dtype=torch.float64), atol=1e-12)
        assert torch.allclose(tap.pre.var(dim=0, unbiased=False), var_B / (var_B + 1e-5), atol=1e-12)
        assert torch.equal(tap.act, act_fn(tap.pre))
        h = tap.act


def test_after_placement_taps_the_linear_output(gen: torch.Generator) -> None:
    model = build_mlp(MLPConfig(depth=2, width=16, placement="after"), seed=0)
    x = torch.randn(32, 64, generator=gen)
    taps: dict[int, Tap] = {}
    model(x, taps)
    assert torch.allclose(taps[1].pre, model.blocks[0].linear(x))
    assert torch.equal(taps[1].act, torch.sigmoid(taps[1].pre))


def test_manual_and_torch_backends_compute_the_same_net(gen: torch.Generator) -> None:
    manual = build_mlp(MLPConfig(), seed=0).double()
    native = build_mlp(replace(MLPConfig(), backend="torch"), seed=0).double()
    native.load_state_dict(manual.state_dict())
    x = torch.randn(60, 64, generator=gen, dtype=torch.float64)
    out_m, out_n = manual(x), native(x)
    assert torch.allclose(out_m, out_n, atol=1e-12)
    out_m.square().sum().backward()
    out_n.square().sum().backward()
    for p_m, p_n in zip(manual.parameters(), native.parameters(), strict=True):
        assert torch.allclose(p_m.grad, p_n.grad, atol=1e-10)
    for b_m, b_n in zip(manual.buffers(), native.buffers(), strict=True):
        assert torch.allclose(b_m.double(), b_n.double(), atol=1e-12)


def test_norm_factory_replaces_every_norm() -> None:
    seen: list[int] = []

    def factory(C: int) -> nn.Module:
        seen.append(C)
        return ManualBatchNorm(C, momentum=0.5)

    model = build_mlp(MLPConfig(depth=3, width=20, norm="none"), seed=0, norm_factory=factory)
    assert seen == [20, 20, 20]
    assert all(isinstance(b.norm, ManualBatchNorm) and b.norm.momentum == 0.5 for b in model.blocks)
    cnn = build_cnn(CNNConfig(), seed=0, norm_factory=lambda C: nn.GroupNorm(1, C))
    assert [type(b.norm) for b in cnn.blocks] == [nn.GroupNorm, nn.GroupNorm]


def test_cnn_shapes_and_torch_batchnorm2d(gen: torch.Generator) -> None:
    cnn = build_model(CNNConfig(backend="torch"), seed=0)
    assert all(isinstance(b.norm, nn.BatchNorm2d) for b in cnn.blocks)
    x = torch.rand(10, 64, generator=gen)
    taps: dict[int, Tap] = {}
    logits = cnn(x, taps)
    assert logits.shape == (10, 10)
    assert taps[1].pre.shape == (10, 16, 8, 8) and taps[2].pre.shape == (10, 32, 4, 4)
    assert torch.equal(cnn(x.view(10, 1, 8, 8)), logits)
    logits.sum().backward()
    assert all(p.grad is not None for p in cnn.parameters())


@pytest.mark.parametrize(
    "cfg",
    [
        MLPConfig(depth=0),
        MLPConfig(depth=11),
        MLPConfig(activation="gelu"),  # type: ignore[arg-type]
        MLPConfig(placement="middle"),  # type: ignore[arg-type]
        MLPConfig(norm="instance"),
        MLPConfig(init_scale=0.0),
    ],
)
def test_bad_configs_raise_value_error(cfg: MLPConfig) -> None:
    with pytest.raises(ValueError):
        build_mlp(cfg)


def test_build_model_rejects_other_configs() -> None:
    with pytest.raises(TypeError):
        build_model("mlp")  # type: ignore[arg-type]
