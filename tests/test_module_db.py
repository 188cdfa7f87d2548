"""PyTorch's own module tests, run against the hand-written layers: zero numerical or behaviour mismatches.

``torch.testing._internal.common_modules.module_db`` holds the ``ModuleInfo`` of every
``torch.nn`` module: its constructor arguments and sample inputs (``affine``,
``not_tracking_stats``, ``zero_batch``, ``affine_not_bias``, ``no_batch_dim``, …) and the inputs it
must reject. For BatchNorm1d/2d/3d, GroupNorm, InstanceNorm1d/2d/3d and LayerNorm, every sample
builds the torch layer and its manual twin from the same arguments in float64, loads the torch
layer's (randomized) state into the twin, and compares outputs, buffers and the gradients of the
input, γ and β over several train steps and then in eval mode, plus fresh eval-mode layers on
randomized buffers. Every error input must be rejected by both, with torch's exception type and
message. gradcheck and gradgradcheck run on every sample in train and eval mode.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

pytest.importorskip("expecttest")  # module_db imports it

from torch.testing._internal.common_modules import ModuleErrorEnum, module_db

from bn_core import layers

TWINS: dict[type[nn.Module], type[nn.Module]] = {
    nn.BatchNorm1d: layers.ManualBatchNorm1d,
    nn.BatchNorm2d: layers.ManualBatchNorm2d,
    nn.BatchNorm3d: layers.ManualBatchNorm3d,
    nn.GroupNorm: layers.ManualGroupNorm,
    nn.InstanceNorm1d: layers.ManualInstanceNorm1d,
    nn.InstanceNorm2d: layers.ManualInstanceNorm2d,
    nn.InstanceNorm3d: layers.ManualInstanceNorm3d,
    nn.LayerNorm: layers.ManualLayerNorm,
}
INFOS = [mi for mi in module_db if mi.module_cls in TWINS]
TRAIN_STEPS = 3
TOL = {"atol": 1e-10, "rtol": 1e-9}  # float64: both sides agree to ~1e-14; this leaves room for summation order


def _samples(mi, training: bool) -> list:
    return list(mi.module_inputs_func(mi, device="cpu", dtype=torch.float64, requires_grad=True, training=training))


def _cases(training: bool) -> list:
    return [
        pytest.param(mi, i, id=f"{mi.module_cls.__name__}-{s.desc or 'default'}")
        for mi in INFOS
        for i, s in enumerate(_samples(mi, training))
    ]


def _pair(mi, sample, gen: torch.Generator) -> tuple[nn.Module, nn.Module]:
    """The torch layer with random γ, β (and buffers) and its twin loaded from its state_dict (strict)."""
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    ref = mi.module_cls(*args, **kwargs).to(torch.float64)
    ours = TWINS[mi.module_cls](*args, **kwargs).to(torch.float64)
    with torch.no_grad():
        for name, t in ref.state_dict().items():
            if t.is_floating_point():
                low = 0.5 if "var" in name or "weight" in name else -1.0
                t.copy_(low + torch.rand(t.shape, generator=gen, dtype=t.dtype) * 1.5)
    assert set(ours.state_dict()) == set(ref.state_dict())
    ours.load_state_dict(ref.state_dict())
    return ref, ours


def _run(layer: nn.Module, x: torch.Tensor, dy_seed: int) -> dict[str, torch.Tensor]:
    """Output, then ∂(y·dy)/∂ of the input and every parameter, then every buffer."""
    x = x.detach().clone().requires_grad_()
    y = layer(x)
    dy = torch.randn(y.shape, generator=torch.Generator().manual_seed(dy_seed), dtype=y.dtype)
    params = dict(layer.named_parameters())
    grads = torch.autograd.grad(y, [x, *params.values()], dy, allow_unused=True)
    out = {"y": y.detach(), **{f"d{n}": g for n, g in zip(["x", *params], grads, strict=True)}}
    return out | {n: b.clone() for n, b in layer.named_buffers()}


def _assert_same(ref: dict, ours: dict, where: str) -> None:
    assert ours.keys() == ref.keys(), where
    for name, r in ref.items():
        o = ours[name]
        assert (o is None) == (r is None), f"{where}: {name}"
        if r is not None:
            assert o.dtype == r.dtype and o.shape == r.shape, f"{where}: {name}"
            torch.testing.assert_close(o, r, **TOL, equal_nan=True, msg=lambda m, n=name: f"{where}: {n}: {m}")


@pytest.mark.parametrize(("mi", "index"), _cases(training=True))
def test_train_steps_then_eval_match_torch(mi, index, gen):
    sample = _samples(mi, True)[index]
    ref, ours = _pair(mi, sample, gen)
    x0 = sample.forward_input.args[0].detach()
    for step in range(TRAIN_STEPS):
        x = x0 * (1.0 + 0.5 * step) + 0.3 * step  # a drifting input: the running statistics must follow
        _assert_same(_run(ref.train(), x, step), _run(ours.train(), x, step), f"train step {step}")
    _assert_same(_run(ref.eval(), x0, 99), _run(ours.eval(), x0, 99), "eval after training")


@pytest.mark.parametrize(("mi", "index"), _cases(training=False))
def test_eval_mode_on_random_buffers_matches_torch(mi, index, gen):
    sample = _samples(mi, False)[index]
    ref, ours = _pair(mi, sample, gen)
    x = sample.forward_input.args[0].detach() * 1.7 - 0.4
    _assert_same(_run(ref.eval(), x, 7), _run(ours.eval(), x, 7), "eval")


def _errors(mi) -> list:
    return list(mi.module_error_inputs_func(mi, device="cpu", dtype=torch.float64, requires_grad=True, training=True))


def _error_cases() -> list:
    cases = []
    for mi in INFOS:
        if mi.module_error_inputs_func is None:
            continue
        for i, e in enumerate(_errors(mi)):
            cases.append(pytest.param(mi, i, id=f"{mi.module_cls.__name__}-{i}-{e.error_regex[:30]}"))
    return cases


@pytest.mark.parametrize(("mi", "index"), _error_cases())
def test_every_input_torch_rejects_is_rejected_with_torchs_error(mi, index):
    err = _errors(mi)[index]
    ctor, fwd = err.module_error_input.constructor_input, err.module_error_input.forward_input
    for cls in (mi.module_cls, TWINS[mi.module_cls]):
        with pytest.raises(err.error_type, match=err.error_regex):
            layer = cls(*ctor.args, **ctor.kwargs)
            assert err.error_on == ModuleErrorEnum.FORWARD_ERROR, f"{cls.__name__} accepted the constructor"
            layer.to(torch.float64)(*fwd.args, **fwd.kwargs)


def _checkable(mi, sample, training: bool) -> tuple[nn.Module, torch.Tensor] | None:
    """The twin and its input, or None where there is nothing to differentiate (an empty batch)."""
    x = sample.forward_input.args[0].detach()
    if x.numel() == 0:
        return None
    args, kwargs = sample.constructor_input.args, sample.constructor_input.kwargs
    layer = TWINS[mi.module_cls](*args, **kwargs).to(torch.float64).train(training)
    with torch.no_grad():
        for p in layer.parameters():
            p.copy_(torch.linspace(0.5, 1.5, p.numel(), dtype=p.dtype).view(p.shape))
    return layer, x.requires_grad_()


@pytest.mark.parametrize("training", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize(("mi", "index"), _cases(training=True))
def test_gradcheck_and_gradgradcheck_pass(mi, index, training):
    checkable = _checkable(mi, _samples(mi, training)[index], training)
    if checkable is None:
        pytest.skip("an empty batch has no derivative to check")
    layer, x = checkable
    params = tuple(layer.parameters())
    fn = torch.func.functional_call
    names = [n for n, _ in layer.named_parameters()]

    def f(x, *ps):
        return fn(layer, dict(zip(names, ps, strict=True)), (x,))

    assert torch.autograd.gradcheck(f, (x, *params), fast_mode=True)
    assert torch.autograd.gradgradcheck(f, (x, *params), fast_mode=True)
