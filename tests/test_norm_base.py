"""The shared base and the drop-in behaviour beyond module_db: every input torch rejects, we reject.

A table of edge cases (ranks, channel counts, dtype mixes, half precision, batches of one,
eps, empty batches, unbatched input) runs through each torch layer and its twin: either both
raise (ours with an exception of torch's kind) or both return the same output in the same
dtype, warnings included. Then: ``track_running_stats`` flipped after construction, factory
kwargs, ``reset_parameters``, old checkpoints, half-precision accuracy against torch's, the
remedies getting the base's checks, and the single EMA step of the codebase.
"""

from __future__ import annotations

import ast
import inspect
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

from bn_core import layers, remedies, sync_bn
from bn_core.norm_base import ManualNormBase, NormInputError, ema_weight

ROOT = Path(__file__).resolve().parents[1]
F16, BF16, F32, F64 = torch.float16, torch.bfloat16, torch.float32, torch.float64
BN1, BN2 = (nn.BatchNorm1d, layers.ManualBatchNorm1d), (nn.BatchNorm2d, layers.ManualBatchNorm2d)
BN3 = (nn.BatchNorm3d, layers.ManualBatchNorm3d)
GN, LN = (nn.GroupNorm, layers.ManualGroupNorm), (nn.LayerNorm, layers.ManualLayerNorm)
IN1, IN2 = (nn.InstanceNorm1d, layers.ManualInstanceNorm1d), (nn.InstanceNorm2d, layers.ManualInstanceNorm2d)
IN3 = (nn.InstanceNorm3d, layers.ManualInstanceNorm3d)

# (id, twins, constructor args, constructor kwargs, input shape, input dtype, layer dtype, train mode)
EDGE_CASES = [
    ("bn1d-4D", BN1, (3,), {}, (4, 3, 2, 2), F32, F32, True),
    ("bn1d-1D", BN1, (3,), {}, (3,), F32, F32, True),
    ("bn1d-3D", BN1, (3,), {}, (4, 3, 5), F32, F32, True),
    ("bn2d-3D", BN2, (3,), {}, (4, 3, 2), F32, F32, True),
    ("bn2d-5D", BN2, (3,), {}, (4, 3, 2, 2, 2), F32, F32, True),
    ("bn3d-4D", BN3, (3,), {}, (4, 3, 2, 2), F32, F32, True),
    ("bn-channels", BN1, (3,), {}, (4, 5), F32, F32, True),
    ("bn-channels-eval", BN1, (3,), {}, (4, 5), F32, F32, False),
    ("bn-channels-stateless", BN1, (3, 1e-5, 0.1, False, False), {}, (4, 5), F32, F32, True),
    ("bn-f64-into-f32", BN1, (3,), {}, (4, 3), F64, F32, True),
    ("bn-f64-into-f32-eval", BN1, (3,), {}, (4, 3), F64, F32, False),
    ("bn-f32-into-f64", BN1, (3,), {}, (4, 3), F32, F64, True),
    ("bn-f64-into-f32-no-affine", BN1, (3,), {"affine": False}, (4, 3), F64, F32, True),
    ("bn-f64-into-stateless", BN1, (3,), {"affine": False, "track_running_stats": False}, (4, 3), F64, F32, True),
    ("bn-f16-into-f32", BN1, (3,), {}, (6, 3), F16, F32, True),
    ("bn-bf16-into-f32-eval", BN1, (3,), {}, (6, 3), BF16, F32, False),
    ("bn-bf16-into-f64", BN1, (3,), {}, (6, 3), BF16, F64, True),
    ("bn-f32-into-bf16", BN1, (3,), {}, (6, 3), F32, BF16, True),
    ("bn-f16-into-f16", BN1, (3,), {}, (6, 3), F16, F16, True),
    ("bn-long", BN1, (3,), {}, (4, 3), torch.long, F32, True),
    ("bn-batch-of-one", BN1, (3,), {}, (1, 3), F32, F32, True),
    ("bn-batch-of-one-eval", BN1, (3,), {}, (1, 3), F32, F32, False),
    ("bn-one-value-3D", BN1, (3,), {}, (1, 3, 1), F32, F32, True),
    ("bn-two-values-3D", BN1, (3,), {}, (1, 3, 2), F32, F32, True),
    ("bn-eps0-train", BN1, (3,), {"eps": 0.0}, (4, 3), F32, F32, True),
    ("bn-eps0-eval", BN1, (3,), {"eps": 0.0}, (4, 3), F32, F32, False),
    ("bn-eps-neg-eval", BN1, (3,), {"eps": -1.0}, (4, 3), F32, F32, False),
    ("bn-eps0-eval-no-buffers", BN1, (3,), {"eps": 0.0, "track_running_stats": False}, (4, 3), F32, F32, False),
    ("bn-eps0-batch-of-one", BN1, (3,), {"eps": 0.0}, (1, 3), F32, F32, True),
    ("bn-empty", BN1, (3,), {}, (0, 3), F32, F32, True),
    ("bn-empty-eval", BN1, (3,), {}, (0, 3), F32, F32, False),
    ("bn-empty-positions", BN1, (3,), {}, (2, 3, 0), F32, F32, True),
    ("bn2d-empty", BN2, (3,), {}, (0, 3, 2, 2), F32, F32, True),
    ("gn-1D", GN, (2, 4), {}, (4,), F32, F32, True),
    ("gn-channels", GN, (2, 4), {}, (3, 6), F32, F32, True),
    ("gn-channels-no-affine", GN, (2, 4), {"affine": False}, (3, 6), F32, F32, True),
    ("gn-indivisible-no-affine", GN, (2, 4), {"affine": False}, (3, 5), F32, F32, True),
    ("gn-one-value", GN, (4, 4), {}, (1, 4), F32, F32, True),
    ("gn-one-value-eval", GN, (4, 4), {}, (1, 4), F32, F32, False),
    ("gn-G=C-batch-2", GN, (4, 4), {}, (2, 4), F32, F32, True),
    ("gn-batch-of-one", GN, (2, 4), {}, (1, 4), F32, F32, True),
    ("gn-unbatched-is-batched", GN, (3, 3), {}, (3, 15), F32, F32, True),
    ("gn-5D", GN, (3, 3), {}, (2, 3, 2, 2, 2), F32, F32, True),
    ("gn-empty", GN, (2, 4), {}, (0, 4, 3), F32, F32, True),
    ("gn-eps-neg", GN, (2, 4), {"eps": -1.0}, (3, 4, 2), F32, F32, True),
    ("gn-f64-into-f32", GN, (2, 4), {}, (3, 4), F64, F32, True),
    ("gn-f32-into-f64", GN, (2, 4), {}, (3, 4), F32, F64, True),
    ("gn-f64-into-stateless", GN, (2, 4), {"affine": False}, (3, 4), F64, F32, True),
    ("gn-bf16-into-f32", GN, (2, 4), {}, (3, 4, 5), BF16, F32, True),
    ("gn-f16-into-f32", GN, (2, 4), {}, (3, 4, 5), F16, F32, True),
    ("gn-bf16-into-f64", GN, (2, 4), {}, (3, 4), BF16, F64, True),
    ("ln-shape", LN, (5,), {}, (3, 4), F32, F32, True),
    ("ln-shape-no-affine", LN, (5,), {"elementwise_affine": False}, (3, 4), F32, F32, True),
    ("ln-1D", LN, (5,), {}, (5,), F32, F32, True),
    ("ln-too-few-dims", LN, ([2, 5],), {}, (5,), F32, F32, True),
    ("ln-empty", LN, (5,), {}, (0, 5), F32, F32, True),
    ("ln-one-value", LN, (1,), {}, (3, 1), F32, F32, True),
    ("ln-no-shape", LN, ([],), {}, (3, 5), F32, F32, True),
    ("ln-eps-neg", LN, (5,), {"eps": -1.0}, (3, 5), F32, F32, True),
    ("ln-f64-into-f32", LN, (5,), {}, (3, 5), F64, F32, True),
    ("ln-f32-into-f64", LN, (5,), {}, (3, 5), F32, F64, True),
    ("ln-f64-into-stateless", LN, (5,), {"elementwise_affine": False}, (3, 5), F64, F32, True),
    ("ln-bf16-into-f32", LN, (5,), {}, (3, 5), BF16, F32, True),
    ("ln-f16-into-f32", LN, (5,), {}, (3, 5), F16, F32, True),
    ("in1d-1D", IN1, (3,), {}, (3,), F32, F32, True),
    ("in1d-4D", IN1, (3,), {}, (2, 3, 4, 4), F32, F32, True),
    ("in1d-unbatched", IN1, (3,), {}, (3, 15), F32, F32, True),
    ("in1d-unbatched-one-position", IN1, (3,), {}, (3, 1), F32, F32, True),
    ("in1d-one-position", IN1, (3,), {}, (2, 3, 1), F32, F32, True),
    ("in1d-one-position-eval", IN1, (3,), {}, (2, 3, 1), F32, F32, False),
    ("in1d-one-position-eval-tracked", IN1, (3,), {"track_running_stats": True}, (2, 3, 1), F32, F32, False),
    ("in1d-channels-warns", IN1, (3,), {}, (2, 4, 5), F32, F32, True),
    ("in1d-channels-affine", IN1, (3,), {"affine": True}, (2, 4, 5), F32, F32, True),
    ("in1d-channels-tracked", IN1, (3,), {"track_running_stats": True}, (2, 4, 5), F32, F32, True),
    ("in1d-empty", IN1, (3,), {}, (0, 3, 5), F32, F32, True),
    ("in1d-empty-positions", IN1, (3,), {}, (2, 3, 0), F32, F32, True),
    ("in1d-eps-neg", IN1, (3,), {"eps": -1.0}, (2, 3, 5), F32, F32, True),
    ("in1d-eps0", IN1, (3,), {"eps": 0.0}, (2, 3, 5), F32, F32, True),
    ("in1d-f64-into-f32-affine", IN1, (3,), {"affine": True}, (2, 3, 5), F64, F32, True),
    ("in1d-f16-into-f32-affine", IN1, (3,), {"affine": True}, (2, 3, 5), F16, F32, True),
    ("in1d-bf16-into-f32-affine", IN1, (3,), {"affine": True}, (2, 3, 5), BF16, F32, True),
    ("in2d-unbatched", IN2, (3,), {"affine": True}, (3, 4, 5), F32, F32, True),
    ("in2d-unbatched-tracked-eval", IN2, (3,), {"track_running_stats": True}, (3, 4, 5), F32, F32, False),
    ("in3d-unbatched", IN3, (3,), {}, (3, 2, 4, 5), F32, F32, True),
    ("in3d-6D", IN3, (3,), {}, (1, 2, 3, 2, 4, 5), F32, F32, True),
]


def _warned(caught: list[warnings.WarningMessage]) -> bool:
    """Whether the layer warned. A ResourceWarning is the garbage collector closing a socket that an
    earlier test left behind, whenever it happens to run (it once failed this test mid-suite)."""
    return any(not issubclass(w.category, ResourceWarning) for w in caught)


def _outcome(cls, args, kwargs, x, layer_dtype, training):
    """("ok", output, warned) or ("raise", exception, warned)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            layer = cls(*args, **kwargs).to(layer_dtype).train(training)
            return "ok", layer(x.clone()), _warned(caught)
        except Exception as err:  # noqa: BLE001  (the kind of exception is what is compared)
            return "raise", err, _warned(caught)


def _kind(err: Exception) -> type[Exception]:
    return next(k for k in (ValueError, RuntimeError, TypeError, Exception) if isinstance(err, k))


@pytest.mark.parametrize(
    ("twins", "args", "kwargs", "shape", "x_dtype", "layer_dtype", "training"),
    [pytest.param(*case[1:], id=case[0]) for case in EDGE_CASES],
)
def test_edge_cases_behave_like_torch(twins, args, kwargs, shape, x_dtype, layer_dtype, training):
    gen = torch.Generator().manual_seed(0)
    x = (torch.randn(shape, generator=gen) * 2 + 1).to(x_dtype) if x_dtype.is_floating_point else torch.ones(shape)
    x = x.to(x_dtype)
    ref = _outcome(twins[0], args, kwargs, x, layer_dtype, training)
    ours = _outcome(twins[1], args, kwargs, x, layer_dtype, training)
    assert ours[0] == ref[0], f"torch: {ref[1]!r}; ours: {ours[1]!r}"
    assert ours[2] == ref[2], "warns exactly when torch warns"
    if ref[0] == "raise":
        assert isinstance(ours[1], _kind(ref[1])), f"torch raised {ref[1]!r}, ours {ours[1]!r}"
        return
    assert ours[1].dtype == ref[1].dtype and ours[1].shape == ref[1].shape
    tol = 1e-4 if x_dtype in (F32, F64) else 2e-2  # float32; a constant group amplifies rounding by 1/sqrt(eps)
    torch.testing.assert_close(ours[1], ref[1], atol=tol, rtol=tol, equal_nan=True)


def test_input_errors_are_both_value_and_runtime_errors():
    with pytest.raises(ValueError, match="mixed dtype"):
        layers.ManualBatchNorm1d(3)(torch.zeros(4, 3, dtype=F64))
    with pytest.raises(RuntimeError, match="mixed dtype"):
        layers.ManualBatchNorm1d(3)(torch.zeros(4, 3, dtype=F64))
    assert issubclass(NormInputError, ValueError) and issubclass(NormInputError, RuntimeError)


# -- track_running_stats flipped after construction, momentum, empty batches -------------------------


def _lockstep(ref: nn.Module, ours: nn.Module, steps: list[tuple[str, torch.Tensor]]) -> None:
    for mode, x in steps:
        ref.train(mode == "train"), ours.train(mode == "train")
        torch.testing.assert_close(ours(x), ref(x), atol=1e-12, rtol=1e-12)
        for name, buf in ref.named_buffers():
            torch.testing.assert_close(dict(ours.named_buffers())[name], buf, atol=1e-12, rtol=1e-12)


def test_switching_tracking_off_freezes_the_buffers_and_eval_keeps_using_them(gen):
    ref, ours = nn.BatchNorm1d(3).double(), layers.ManualBatchNorm1d(3).double()
    xs = [torch.randn(8, 3, generator=gen, dtype=F64) * 2 + k for k in range(4)]
    _lockstep(ref, ours, [("train", xs[0]), ("train", xs[1])])
    ref.track_running_stats = ours.track_running_stats = False
    frozen = ours.running_mean.clone()
    _lockstep(ref, ours, [("train", xs[2]), ("eval", xs[3])])
    assert torch.equal(ours.running_mean, frozen) and int(ours.num_batches_tracked) == 2
    batch_stats = nn.functional.batch_norm(xs[3], None, None, ours.weight, ours.bias, training=True)
    assert not torch.allclose(ours.eval()(xs[3]), batch_stats), "eval still normalizes with the buffers"


def test_switching_tracking_on_without_buffers_keeps_batch_statistics(gen):
    ref = nn.BatchNorm1d(3, track_running_stats=False).double()
    ours = layers.ManualBatchNorm1d(3, track_running_stats=False).double()
    ref.track_running_stats = ours.track_running_stats = True
    xs = [torch.randn(8, 3, generator=gen, dtype=F64) for _ in range(2)]
    _lockstep(ref, ours, [("train", xs[0]), ("eval", xs[1])])
    assert ours.running_mean is None


@pytest.mark.parametrize("momentum", [None, 0.3])
def test_empty_batches_are_counted_like_torch(momentum, gen):
    ref, ours = nn.BatchNorm2d(3, momentum=momentum).double(), layers.ManualBatchNorm2d(3, momentum=momentum).double()
    x = [torch.randn(4, 3, 2, 2, generator=gen, dtype=F64) + k for k in range(3)]
    empty = torch.zeros(0, 3, 2, 2, dtype=F64)
    _lockstep(ref, ours, [("train", x[0]), ("train", empty), ("train", x[1]), ("eval", x[2])])
    assert int(ours.num_batches_tracked) == 3


def test_an_empty_batch_has_zero_parameter_gradients():
    layer = layers.ManualBatchNorm1d(3)
    x = torch.zeros(0, 3, requires_grad=True)
    layer(x).sum().backward()
    assert x.grad.shape == (0, 3) and torch.equal(layer.weight.grad, torch.zeros(3))


def test_momentum_outside_0_1_is_refused_at_construction():
    """The one deliberate difference in momentum: torch would extrapolate the average silently."""
    for cls in (layers.ManualBatchNorm, remedies.GhostBatchNorm, layers.ManualInstanceNorm1d):
        with pytest.raises(ValueError, match=r"momentum must be in \[0, 1\]"):
            cls(3, 2, momentum=1.5) if cls is remedies.GhostBatchNorm else cls(3, momentum=1.5)
    assert ema_weight(None, 4) == 0.25 and ema_weight(0.1, 4) == 0.1


def test_the_documented_differences_from_torch(gen):
    """docs/layers.md lists where the twins differ from torch on purpose; each stays so."""
    with pytest.raises(ValueError, match="num_groups must be at least 1"):
        layers.ManualGroupNorm(0, 4)
    tracked = layers.ManualInstanceNorm1d(3, track_running_stats=True)
    assert nn.InstanceNorm1d(3, track_running_stats=True)(torch.randn(2, 3, 5, dtype=F64)).dtype == F64  # torch
    with pytest.raises(RuntimeError, match="mixed dtype"):
        tracked(torch.randn(2, 3, 5, dtype=F64))
    tracked(torch.randn(4, 3, 5, generator=gen))
    before = tracked.running_mean.clone()
    tracked(torch.zeros(0, 3, 5))
    assert torch.equal(tracked.running_mean, before), "an empty batch leaves the buffers (torch: NaN)"
    gn = layers.ManualGroupNorm(2, 4)
    gn(torch.zeros(2, 4, 0, requires_grad=True)).sum().backward()
    assert torch.equal(gn.weight.grad, torch.zeros(4))
    with pytest.raises(RuntimeError, match="floating-point"):
        layers.ManualBatchNorm1d(3)(torch.ones(4, 3, dtype=torch.long))


# -- construction: factory kwargs, reset_parameters, repr, old checkpoints ------------------------------

TWIN_CTORS = [(BN1, (3,)), (BN2, (3,)), (BN3, (3,)), (GN, (2, 4)), (LN, ([2, 3],)), (IN1, (3, 1e-5, 0.1, True, True))]


@pytest.mark.parametrize(("twins", "args"), TWIN_CTORS, ids=lambda v: getattr(v[0], "__name__", ""))
@pytest.mark.parametrize("factory", [{"dtype": F64}, {"dtype": F16}, {"device": "meta"}], ids=["f64", "f16", "meta"])
def test_device_and_dtype_factory_kwargs_like_torch(twins, args, factory):
    ref, ours = twins[0](*args, **factory), twins[1](*args, **factory)
    got = {k: (v.dtype, v.device, v.shape) for k, v in ours.state_dict().items()}
    assert got == {k: (v.dtype, v.device, v.shape) for k, v in ref.state_dict().items()}
    assert ours.extra_repr() == ref.extra_repr()


@pytest.mark.parametrize(("twins", "args"), TWIN_CTORS, ids=lambda v: getattr(v[0], "__name__", ""))
def test_reset_parameters_restores_the_initial_state(twins, args, gen):
    layer = twins[1](*args).double().train()
    with torch.no_grad():
        for t in layer.state_dict().values():
            t.add_(torch.rand(t.shape, generator=gen).to(t.dtype) + 1)
    layer.reset_parameters()
    fresh = twins[0](*args).double()
    for name, t in fresh.state_dict().items():
        assert torch.equal(layer.state_dict()[name], t), name


def test_a_checkpoint_without_num_batches_tracked_loads_like_torch():
    state = nn.BatchNorm1d(3).state_dict()
    del state["num_batches_tracked"]
    state._metadata[""]["version"] = 1  # torch < 0.4.1
    ours = layers.ManualBatchNorm1d(3)
    ours.num_batches_tracked.fill_(7)
    ours.load_state_dict(state)
    assert int(ours.num_batches_tracked) == 0


# -- half precision: float32 statistics, the input's dtype, torch's accuracy -----------------------------

HALF_LAYERS = [
    ("bn-train", lambda: nn.BatchNorm1d(8), lambda: layers.ManualBatchNorm1d(8), True),
    ("bn-eval", lambda: nn.BatchNorm1d(8), lambda: layers.ManualBatchNorm1d(8), False),
    ("gn", lambda: nn.GroupNorm(2, 8), lambda: layers.ManualGroupNorm(2, 8), True),
    ("ln", lambda: nn.LayerNorm(8), lambda: layers.ManualLayerNorm(8), True),
    ("in", lambda: nn.InstanceNorm1d(8, affine=True), lambda: layers.ManualInstanceNorm1d(8, affine=True), True),
]


@pytest.mark.parametrize("dtype", [F16, BF16], ids=["f16", "bf16"])
@pytest.mark.parametrize(
    ("make_ref", "make_ours", "training"), [c[1:] for c in HALF_LAYERS], ids=[c[0] for c in HALF_LAYERS]
)
def test_half_precision_is_as_accurate_as_torch(make_ref, make_ours, training, dtype, gen):
    """Error against float64 math on the same (rounded) input: at most 2× torch's (issue 14)."""
    ref, ours = make_ref().train(training), make_ours().train(training)
    with torch.no_grad():
        for t in ref.state_dict().values():
            if t.is_floating_point():
                t.copy_(torch.rand(t.shape, generator=gen) * 1.5 + 0.5)
    ours.load_state_dict(ref.state_dict())
    x = (torch.randn(64, 8, 16, generator=gen) * 3 + 20).to(dtype)  # a large mean: cancellation in low precision
    if isinstance(ref, nn.BatchNorm1d):
        x = x[:, :, 0]  # (N, C)
    elif isinstance(ref, nn.LayerNorm):
        x = x.transpose(1, 2).contiguous()  # (N, L, C): layer norm over the last axis
    exact = make_ref().double().train(training)
    exact.load_state_dict(ref.state_dict())
    truth = exact(x.double())
    y_ref, y_ours = ref(x.clone()), ours(x.clone().requires_grad_())
    assert y_ours.dtype == dtype == y_ref.dtype
    err_ref, err_ours = (y_ref.double() - truth).abs().max(), (y_ours.double() - truth).abs().max()
    assert err_ours <= 2 * err_ref, f"ours {err_ours:.3g} vs torch {err_ref:.3g}"
    y_ours.sum().backward()


# -- the remedies and synchronized BN get every check from the base --------------------------------------

REMEDIES = [
    lambda **kw: remedies.GhostBatchNorm(3, 2, **kw),
    lambda **kw: remedies.BatchRenorm(3, **kw),
    lambda **kw: sync_bn.SyncManualBatchNorm(3, **kw),
]


@pytest.mark.parametrize("make", REMEDIES, ids=["ghost", "renorm", "sync"])
def test_remedies_get_the_base_checks_and_options(make):
    with pytest.raises(ValueError, match="eps must be positive"):
        make(eps=0.0)(torch.randn(4, 3))
    with pytest.raises(ValueError, match="expected 2D or higher"):
        make()(torch.randn(3))
    with pytest.raises(RuntimeError, match="mixed dtype"):
        make()(torch.randn(4, 3, dtype=F64))
    layer = make(bias=False, dtype=F64)
    assert layer.bias is None and layer.weight.dtype == F64
    assert layer(torch.zeros(0, 3, dtype=F64)).shape == (0, 3) and int(layer.num_batches_tracked) == 1
    y = layer(torch.randn(4, 3, dtype=F16).to(F64).half().float().to(F64))
    assert y.dtype == F64
    assert make()(torch.randn(4, 3).half()).dtype == F16


def test_every_bn_like_layer_derives_from_the_base_and_shares_its_ema_step():
    classes = {c for c in _subclasses(nn.Module) if c.__module__.startswith("bn_core") and _keeps_running_stats(c)}
    assert classes, "found no BN-like layer"
    for cls in classes:
        assert issubclass(cls, ManualNormBase), cls
        assert cls._track is ManualNormBase._track, f"{cls.__name__} redefines the EMA step"


def _subclasses(cls: type) -> set[type]:
    import bn_core.layers, bn_core.noisy_bn, bn_core.remedies, bn_core.sync_bn  # noqa: E401, F401, I001

    found = set(cls.__subclasses__())
    return found | {s for c in found for s in _subclasses(c)}


def _keeps_running_stats(cls: type) -> bool:
    try:
        return "running_mean" in inspect.getsource(cls)
    except (OSError, TypeError):
        return False


# -- one EMA step in the codebase --------------------------------------------------------------------


def _is_ema(node: ast.AST) -> bool:
    """A running statistic moved toward a batch one: ``lerp(running, batch, w)``, or a sum with a momentum term.

    ``(1 − momentum)·running + momentum·batch`` and ``running + momentum·(batch − running)`` both
    count; an optimizer's momentum (no running statistic) and the inversion of the step do not.
    """
    if "running" not in ast.unparse(node):
        return False
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute | ast.Name):
        return (node.func.attr if isinstance(node.func, ast.Attribute) else node.func.id) in ("lerp", "lerp_")
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return any("momentum" in ast.unparse(side) and "*" in ast.unparse(side) for side in (node.left, node.right))
    return False


def _is_cumulative_rule(node: ast.AST) -> bool:
    """``1 / k if momentum is None else momentum``: the cumulative-average weight."""
    if not (isinstance(node, ast.IfExp) and "momentum is None" in ast.unparse(node.test)):
        return False
    return any(isinstance(b, ast.BinOp) and isinstance(b.op, ast.Div) for b in (node.body, node.orelse))


def _functions_with(pattern) -> list[str]:
    found = []
    for path in sorted(p for folder in ("bn_core", "ui", "views", "bench") for p in (ROOT / folder).rglob("*.py")):
        for fn in ast.walk(ast.parse(path.read_text())):
            if isinstance(fn, ast.FunctionDef) and any(pattern(n) for n in ast.walk(fn)):
                found.append(f"{path.relative_to(ROOT).as_posix()}::{fn.name}")
    return found


def test_the_ema_step_is_written_once_in_the_codebase():
    """The formula lives in functional.update_running_stats and the momentum=None rule in norm_base.ema_weight.

    Every nn.Module reaches them through ManualNormBase._track (the test above); code with
    another state layout (the stacked engine's (k, 1, F) statistics) calls the two functions.
    """
    assert _functions_with(_is_ema) == ["bn_core/functional.py::update_running_stats"]
    assert _functions_with(_is_cumulative_rule) == ["bn_core/norm_base.py::ema_weight"]


def test_the_ema_scan_finds_a_copy(tmp_path):
    """The scan must be able to fail: a hand-rolled running-mean update is an EMA definition."""
    copy = "def step(self, mu):\n    self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mu\n"
    assert any(_is_ema(n) for n in ast.walk(ast.parse(copy)))
    assert any(_is_ema(n) for n in ast.walk(ast.parse("r = torch.lerp(self.running_var, v, momentum)")))
    assert not any(_is_ema(n) for n in ast.walk(ast.parse("mu = (running_mean - (1 - momentum) * old) / momentum")))
    assert not any(_is_ema(n) for n in ast.walk(ast.parse("velocity = momentum * velocity + grad")))
    rule = "w = 1.0 / self.n_batches if self.momentum is None else self.momentum"
    assert any(_is_cumulative_rule(n) for n in ast.walk(ast.parse(rule)))
    assert not any(_is_cumulative_rule(n) for n in ast.walk(ast.parse("w = 0.0 if momentum is None else momentum")))
