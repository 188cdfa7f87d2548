"""ManualBatchNorm and make_norm against torch.nn, in float64; the hand-written backward, once and twice.

PyTorch's own module samples run in tests/test_module_db.py; the behaviour table (checks,
dtypes, toggles) in tests/test_norm_base.py.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import bn_core.device as device_module
import bn_core.layers.batch_norm as batch_norm_module
from bn_core.device import pick_device
from bn_core.layers import (
    ManualBatchNorm,
    ManualBatchNorm1d,
    ManualBatchNorm2d,
    ManualGroupNorm,
    batch_norm_autograd,
    default_groups,
    make_norm,
)

TOL = 1e-10


def _pair(torch_cls, C, **kw):
    manual = ManualBatchNorm(C, **kw).double()
    reference = torch_cls(C, **kw).double()
    return manual, reference


def _batch(shape, gen, shift=0.0):
    return torch.randn(shape, generator=gen, dtype=torch.float64) * 2.0 + shift


def _random_layer(C, gen, **kw):
    layer = ManualBatchNorm(C, **kw).double()
    with torch.no_grad():
        layer.weight.copy_(torch.randn(C, generator=gen, dtype=torch.float64))
        layer.bias.copy_(torch.randn(C, generator=gen, dtype=torch.float64))
    return layer


@pytest.mark.parametrize("shape", [(6, 4), (3, 2, 3, 3)])
def test_gradcheck_through_the_hand_written_backward(shape, gen):
    layer = _random_layer(shape[1], gen)
    x = _batch(shape, gen).requires_grad_()
    assert torch.autograd.gradcheck(lambda x: layer(x), (x,))
    gamma = layer.weight.detach().clone().requires_grad_()
    beta = layer.bias.detach().clone().requires_grad_()
    assert torch.autograd.gradcheck(lambda x, g, b: batch_norm_autograd(x, g, b, 1e-5)[0], (x, gamma, beta))


@pytest.mark.parametrize("shape", [(4, 3), (3, 2, 4), (2, 3, 2, 2)])  # the shapes where issue 14 found it wrong
@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
def test_second_derivatives_are_exact(shape, training, gen):
    layer = _random_layer(shape[1], gen).train(training)
    if not training:
        layer.running_mean.copy_(torch.randn(shape[1], generator=gen, dtype=torch.float64))
    x = _batch(shape, gen).requires_grad_()
    gamma, beta = layer.weight, layer.bias
    assert torch.autograd.gradgradcheck(
        lambda x, g, b: torch.func.functional_call(layer, {"weight": g, "bias": b}, (x,)), (x, gamma, beta)
    )


def test_a_gradient_penalty_matches_torch(gen):
    """∂/∂x of ‖∂ℓ/∂x‖²: the second derivative a WGAN-GP or double-backprop regularizer trains with."""
    ours, ref = _random_layer(3, gen), nn.BatchNorm1d(3).double()
    ref.load_state_dict(ours.state_dict())
    x0, target = _batch((5, 3), gen), _batch((5, 3), gen)
    penalties = []
    for layer in (ours, ref):
        x = x0.clone().requires_grad_()
        (dx,) = torch.autograd.grad(((layer(x) - target) ** 3).sum(), x, create_graph=True)
        penalties.append(torch.autograd.grad(dx.pow(2).sum(), [x, layer.weight]))
    for mine, theirs in zip(*penalties, strict=True):
        torch.testing.assert_close(mine, theirs, atol=1e-9, rtol=1e-9)


def test_the_graph_building_backward_gives_the_same_first_derivative(gen):
    layer = _random_layer(4, gen)
    x = _batch((6, 4), gen).requires_grad_()
    dy = _batch((6, 4), gen)
    plain = torch.autograd.grad(layer(x), [x, layer.weight, layer.bias], dy)
    graph = torch.autograd.grad(layer(x), [x, layer.weight, layer.bias], dy, create_graph=True)
    assert graph[0].requires_grad and graph[1].requires_grad  # dβ = Σ dy is constant here: nothing to track
    for p, g in zip(plain, graph, strict=True):
        torch.testing.assert_close(p, g, atol=1e-13, rtol=1e-13)


def test_the_hand_written_backward_is_what_trains(monkeypatch, gen):
    calls = []
    real = batch_norm_module.batch_norm_backward

    def spy(dy, cache):
        calls.append(dy.shape)
        return real(dy, cache)

    monkeypatch.setattr(batch_norm_module, "batch_norm_backward", spy)
    layer = ManualBatchNorm(3).double()
    layer(_batch((5, 3), gen)).sum().backward()
    assert calls == [torch.Size([5, 3])]
    assert layer.weight.grad is not None
    x = _batch((5, 3), gen).requires_grad_()
    (dx,) = torch.autograd.grad(layer(x).pow(3).sum(), x, create_graph=True)
    assert len(calls) == 2, "with create_graph the staged backward runs too"
    dx.sum().backward()  # through the staged backward's own graph, and through y = BN(x) once more
    assert len(calls) == 3


@pytest.mark.parametrize("momentum", [0.01, 0.1, 0.5, 0.9, None])
@pytest.mark.parametrize(("torch_cls", "shape"), [(nn.BatchNorm1d, (10, 4)), (nn.BatchNorm2d, (4, 3, 5, 5))])
def test_running_stats_match_torch_after_50_steps(torch_cls, shape, momentum, gen):
    manual, reference = _pair(torch_cls, shape[1], momentum=momentum)
    manual.train(), reference.train()
    for step in range(50):
        x = _batch(shape, gen, shift=0.1 * step)  # a drifting distribution, like a layer input in training
        assert (manual(x) - reference(x)).abs().max() < TOL
    assert (manual.running_mean - reference.running_mean).abs().max() < TOL
    assert (manual.running_var - reference.running_var).abs().max() < TOL
    assert int(manual.num_batches_tracked) == int(reference.num_batches_tracked) == 50
    manual.eval(), reference.eval()
    x = _batch(shape, gen)
    assert (manual(x) - reference(x)).abs().max() < TOL


@pytest.mark.parametrize(("torch_cls", "shape"), [(nn.BatchNorm1d, (8, 5)), (nn.BatchNorm2d, (4, 5, 3, 3))])
def test_training_with_sgd_matches_torch(torch_cls, shape, gen):
    manual, reference = _pair(torch_cls, shape[1])
    opt_m = torch.optim.SGD(manual.parameters(), lr=0.1)
    opt_r = torch.optim.SGD(reference.parameters(), lr=0.1)
    target = _batch(shape, gen)
    for _ in range(20):
        x = _batch(shape, gen)
        for layer, opt in ((manual, opt_m), (reference, opt_r)):
            opt.zero_grad()
            ((layer(x) - target) ** 2).mean().backward()
            opt.step()
    assert (manual.weight - reference.weight).abs().max() < TOL
    assert (manual.bias - reference.bias).abs().max() < TOL


@pytest.mark.parametrize("torch_cls", [nn.BatchNorm1d, nn.BatchNorm2d])
def test_state_dict_loads_both_ways(torch_cls, gen):
    shape = (6, 3) if torch_cls is nn.BatchNorm1d else (6, 3, 2, 2)
    manual, reference = _pair(torch_cls, 3)
    for _ in range(3):
        reference(_batch(shape, gen, shift=2.0))
    assert set(manual.state_dict()) == set(reference.state_dict())
    manual.load_state_dict(reference.state_dict())  # strict: same names and shapes
    manual.eval(), reference.eval()
    x = _batch(shape, gen)
    assert (manual(x) - reference(x)).abs().max() < TOL
    for _ in range(3):
        manual.train()(_batch(shape, gen, shift=-1.0))
    fresh = torch_cls(3).double()
    fresh.load_state_dict(manual.state_dict())
    fresh.eval(), manual.eval()
    assert (fresh(x) - manual(x)).abs().max() < TOL


@pytest.mark.parametrize("affine", [True, False])
@pytest.mark.parametrize("track", [True, False])
def test_affine_and_track_running_stats_options_match_torch(affine, track, gen):
    manual, reference = _pair(nn.BatchNorm1d, 4, affine=affine, track_running_stats=track)
    assert set(manual.state_dict()) == set(reference.state_dict())
    for mode in ("train", "eval"):
        getattr(manual, mode)(), getattr(reference, mode)()
        x = _batch((7, 4), gen, shift=3.0)
        assert (manual(x) - reference(x)).abs().max() < TOL


def test_eval_mode_uses_running_statistics_not_the_batch(gen):
    layer = ManualBatchNorm(2).double()
    for _ in range(30):
        layer(_batch((16, 2), gen, shift=5.0))
    layer.eval()
    x = _batch((16, 2), gen, shift=5.0)
    y_eval = layer(x)
    layer.train()
    y_train = layer(x)
    assert not torch.allclose(y_eval, y_train), "the train/eval switch must change the computation"
    layer.eval()
    assert torch.allclose(layer(x[:1]), layer(x)[:1]), "eval mode treats each example independently"


def test_batch_of_one_in_train_mode_raises_like_torch(gen):
    x = _batch((1, 3), gen)
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        ManualBatchNorm(3)(x.float())
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        nn.BatchNorm1d(3)(x.float())
    assert ManualBatchNorm(3).eval()(x.float()).shape == (1, 3)


def test_wrong_channel_count_is_a_clear_error():
    with pytest.raises(ValueError, match=r"Expected input \(N, 3"):
        ManualBatchNorm(3)(torch.zeros(4, 5))
    with pytest.raises(RuntimeError, match="running_mean should contain 5 elements not 3"):  # what torch says
        ManualBatchNorm(3)(torch.zeros(4, 5))


KIND_SPATIAL = [(k, s) for k in ("batch", "layer", "group", "instance", "none") for s in (False, True)]


@pytest.mark.parametrize(("kind", "spatial"), [(k, s) for k, s in KIND_SPATIAL if k != "instance" or s])
def test_make_norm_manual_matches_torch_backend(kind, spatial, gen):
    C = 8
    shape = (5, C, 3, 3) if spatial else (5, C)
    manual = make_norm(kind, C, "manual", spatial=spatial, num_groups=4).double()
    reference = make_norm(kind, C, "torch", spatial=spatial, num_groups=4).double()
    with torch.no_grad():
        for p in list(manual.parameters()) + list(reference.parameters()):
            p.copy_(torch.linspace(0.5, 1.5, p.numel(), dtype=p.dtype))
    x = _batch(shape, gen, shift=1.0).requires_grad_()
    y_m, y_r = manual(x), reference(x)
    assert (y_m - y_r).abs().max() < TOL
    (g_m,) = torch.autograd.grad(y_m.pow(2).sum(), x)
    (g_r,) = torch.autograd.grad(y_r.pow(2).sum(), x)
    assert (g_m - g_r).abs().max() < 1e-9


def test_make_norm_types_and_errors():
    assert type(make_norm("batch", 4, "manual")) is ManualBatchNorm1d
    assert type(make_norm("batch", 4, "manual", spatial=True)) is ManualBatchNorm2d
    assert isinstance(make_norm("batch", 4, "manual"), ManualBatchNorm)
    assert isinstance(make_norm("batch", 4, "torch", spatial=True), nn.BatchNorm2d)
    assert isinstance(make_norm("layer", 4, "manual"), ManualGroupNorm)
    assert isinstance(make_norm("none", 4, "torch"), nn.Identity)
    with pytest.raises(ValueError, match="must divide"):
        make_norm("group", 6, "manual", num_groups=4)
    with pytest.raises(ValueError, match="must divide"):
        make_norm("group", 6, "torch", num_groups=4)
    with pytest.raises(ValueError, match="spatial"):
        make_norm("instance", 6, "manual")
    with pytest.raises(ValueError, match="Unknown norm kind"):
        make_norm("weird", 6, "manual")
    with pytest.raises(ValueError, match="Unknown backend"):
        make_norm("batch", 6, "jax")


@pytest.mark.parametrize(("C", "G"), [(32, 32), (100, 25), (6, 6), (7, 7), (64, 32)])
def test_default_groups_divides_and_is_at_most_32(C, G):
    assert default_groups(C) == G


def test_pick_device_honours_env_and_falls_back(monkeypatch):
    monkeypatch.setenv("BN_DEVICE", "cpu")
    assert pick_device() == torch.device("cpu")
    assert pick_device("cpu") == torch.device("cpu")
    with pytest.raises(ValueError, match="Unknown device"):
        pick_device("tpu-please")
    if not torch.cuda.is_available():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            assert pick_device("cuda") == torch.device("cpu")
        assert any("not available" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    ("available", "expected"), [({"cuda", "mps"}, "cuda"), ({"mps"}, "mps"), (set(), "cpu"), ({"cuda"}, "cuda")]
)
def test_pick_device_order_without_env(monkeypatch, available, expected):
    monkeypatch.delenv("BN_DEVICE", raising=False)
    monkeypatch.setattr(device_module, "_available", lambda d: d.type == "cpu" or d.type in available)
    assert pick_device().type == expected
