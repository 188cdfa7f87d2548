"""Training engine: determinism, torch.optim as the oracle, records, divergence, evaluation modes, Fig. 1."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from bn_core.data import DataConfig, load_dataset
from bn_core.models import CNNConfig, MLPConfig, Tap, build_model
from bn_core.train import (
    BATCH_OF_ONE,
    FIG1_LR,
    StepContext,
    TrainConfig,
    batch_schedule,
    collect_taps,
    evaluate,
    fig1_config,
    fixed_rows,
    needs_bigger_batch,
    run_schedule,
    train,
    variant_label,
    warm_up,
)
from bn_core.train.records import tap_rows

DIGITS = load_dataset(DataConfig("digits"))
SMALL = TrainConfig(
    model=MLPConfig(depth=2, width=32),
    steps=40,
    eval_every=10,
    stats_every=20,
    probe_size=64,
)


def _bn_buffers(model: torch.nn.Module) -> list[torch.Tensor]:
    return [b.clone() for b in model.buffers()]


def test_same_seed_is_bitwise_identical_and_seed_matters() -> None:
    a, b = train(SMALL, data=DIGITS), train(SMALL, data=DIGITS)
    pd.testing.assert_frame_equal(a.curves, b.curves, check_exact=True)
    pd.testing.assert_frame_equal(a.layers, b.layers, check_exact=True)
    for (name, t_a), t_b in zip(a.model.state_dict().items(), b.model.state_dict().values(), strict=True):
        assert torch.equal(t_a, t_b), name
    c = train(replace(SMALL, seed=1), data=DIGITS)
    assert not np.array_equal(a.curves["value"].to_numpy(), c.curves["value"].to_numpy())


def test_global_rng_is_untouched() -> None:
    state = torch.random.get_rng_state()
    train(replace(SMALL, steps=5), data=DIGITS)
    assert torch.equal(state, torch.random.get_rng_state())


def _torch_optimizer(params, cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adam":
        return torch.optim.Adam(params, lr=cfg.lr, foreach=True)
    return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum if cfg.optimizer == "momentum" else 0, foreach=True)


@pytest.mark.parametrize("optimizer", ["sgd", "momentum", "adam"])
def test_engine_equals_a_plain_torch_loop(optimizer: str) -> None:
    """torch.optim is the oracle: recording (probe forwards, evaluations) must not change training."""
    cfg = replace(SMALL, optimizer=optimizer, lr=0.05 if optimizer != "sgd" else 0.5, dtype="float64")
    result = train(cfg, data=DIGITS)
    model_cfg = replace(cfg.model, in_features=64, n_classes=10)
    model = build_model(model_cfg, seed=cfg.seed).double()
    opt = _torch_optimizer(model.parameters(), cfg)
    x, y = DIGITS.x_train.double(), DIGITS.y_train
    losses = []
    for idx in run_schedule(cfg, DIGITS):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        losses.append(loss.item())
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert result.metric("loss").tolist() == losses  # bitwise: same ops in the same order
    for (name, p_engine), p_ref in zip(result.model.state_dict().items(), model.state_dict().values(), strict=True):
        assert torch.equal(p_engine, p_ref), name


def test_records_have_the_documented_schema() -> None:
    result = train(SMALL, data=DIGITS)
    assert list(result.curves.columns) == ["step", "variant", "metric", "value"]
    assert list(result.layers.columns) == ["step", "variant", "layer", "metric", "value"]
    assert set(result.curves["variant"]) == {"BN"} and result.variant == "BN"
    assert result.metric("loss").index.tolist() == list(range(1, 41))
    assert result.metric("test_acc").index.tolist() == [0, 10, 20, 30, 40]
    layer_steps = sorted(set(result.layers["step"]))
    assert layer_steps == [0, 20, 40] and sorted(set(result.layers["layer"])) == [1, 2]
    metrics = set(result.layers["metric"])
    assert {"pre_p15", "pre_p50", "pre_p85", "pre_mean", "pre_std", "saturation", "grad_norm"} <= metrics
    wide = result.layers.pivot_table(index=["step", "layer"], columns="metric", values="value")
    assert (wide["pre_p15"] <= wide["pre_p50"]).all() and (wide["pre_p50"] <= wide["pre_p85"]).all()
    assert wide.loc[0, "grad_norm"].isna().all() and (wide.loc[20, "grad_norm"] > 0).all()
    accuracies = result.curves[result.curves["metric"].str.endswith("acc")]["value"]
    assert accuracies.between(0, 1).all()
    assert result.status == "trained 40 steps" and result.diverged_at is None


def test_layer_stats_match_torch_on_the_probe() -> None:
    """The recorded step-0 percentiles are torch.quantile of the probe's layer inputs."""
    cfg = replace(SMALL, model=replace(SMALL.model, norm="none", activation="tanh"), dtype="float64")
    result = train(replace(cfg, steps=1), data=DIGITS)
    model = build_model(replace(cfg.model, in_features=64, n_classes=10), seed=cfg.seed).double()
    probe_idx, _ = fixed_rows(cfg, DIGITS)
    taps = collect_taps(model, DIGITS.x_train[probe_idx])
    rows = result.layers[result.layers["step"] == 0].set_index(["layer", "metric"])["value"]
    for layer, tap in taps.items():
        q = torch.quantile(tap.pre.flatten(), torch.tensor([0.15, 0.5, 0.85], dtype=torch.float64))
        assert rows[(layer, "pre_p15")] == pytest.approx(q[0].item(), abs=1e-12)
        assert rows[(layer, "pre_p85")] == pytest.approx(q[2].item(), abs=1e-12)
        q_unit = torch.quantile(tap.pre[:, 0], torch.tensor([0.5], dtype=torch.float64))
        assert rows[(layer, "unit_p50")] == pytest.approx(q_unit.item(), abs=1e-12)
        assert rows[(layer, "pre_std")] == pytest.approx(tap.pre.std(unbiased=False).item(), rel=1e-12)
        assert rows[(layer, "saturation")] == pytest.approx((tap.act.abs() > 0.95).double().mean().item())


@pytest.mark.parametrize("shapes", [[(64, 32)] * 3, [(16, 4, 5, 5), (16, 8, 3, 3)]], ids=["mlp", "cnn"])
def test_tap_rows_are_numpy_statistics_layer_by_layer(shapes) -> None:
    """Layers measured together (one shape) or one by one (shapes differ) give each layer's own
    np.percentile / mean / std / saturation, with NaN and inf recorded, not raised."""
    gen = torch.Generator().manual_seed(3)
    taps = {
        i: Tap(torch.randn(shape, generator=gen) * i, torch.rand(shape, generator=gen))
        for i, shape in enumerate(shapes, 1)
    }
    taps[1].pre[0, 0] = float("inf")
    rows = {(layer, name): v for layer, name, v in tap_rows(taps, "sigmoid", unit=2)}
    for layer, (pre, act) in taps.items():
        pre64 = pre.double().numpy()
        p15, p50, p85 = np.percentile(pre64, [15, 50, 85])
        assert rows[(layer, "pre_p15")] == pytest.approx(p15, rel=1e-6)
        assert rows[(layer, "pre_p50")] == pytest.approx(p50, rel=1e-6)
        assert rows[(layer, "pre_p85")] == pytest.approx(p85, rel=1e-6)
        assert rows[(layer, "unit_p50")] == pytest.approx(np.percentile(pre64[:, 2], 50), rel=1e-6)
        with np.errstate(invalid="ignore"):
            assert rows[(layer, "pre_std")] == pytest.approx(pre64.std(), rel=1e-6, nan_ok=True)
        assert rows[(layer, "pre_mean")] == pytest.approx(pre64.mean(), rel=1e-6)
        assert rows[(layer, "saturation")] == pytest.approx(np.mean((act.numpy() < 0.05) | (act.numpy() > 0.95)))
    assert np.isinf(rows[(1, "pre_mean")]) and np.isnan(rows[(1, "pre_std")])


def test_relu_records_zero_fraction() -> None:
    result = train(replace(SMALL, model=replace(SMALL.model, activation="relu"), steps=5), data=DIGITS)
    zero = result.layers[result.layers["metric"] == "zero_frac"]["value"]
    assert len(zero) > 0 and zero.between(0.3, 0.7).all()  # BN before ReLU: about half the units are off
    assert "saturation" not in set(result.layers["metric"])


def test_divergence_is_reported_not_raised() -> None:
    cfg = replace(SMALL, model=MLPConfig(depth=3, width=32, norm="none", activation="relu", init_scale=3.0), lr=1e4)
    messages: list[tuple[float, str]] = []
    result = train(cfg, data=DIGITS, progress=lambda f, m: messages.append((f, m)))
    assert result.diverged_at is not None and 1 < result.diverged_at <= 40
    assert result.status == f"diverged at step {result.diverged_at}"
    assert result.steps_run == result.diverged_at - 1
    assert result.curves["step"].max() < result.diverged_at
    assert np.isfinite(result.curves["value"]).all() and np.isfinite(result.layers["value"]).all()
    assert np.isnan(result.final_test_acc)
    assert messages[-1] == (1.0, f"diverged at step {result.diverged_at}")


def test_progress_and_on_step_hooks() -> None:
    seen: list[StepContext] = []
    fractions: list[float] = []
    result = train(
        replace(SMALL, steps=20),
        data=DIGITS,
        progress=lambda f, m: fractions.append(f),
        on_step=seen.append,
    )
    assert [ctx.step for ctx in seen] == list(range(1, 21))
    assert [ctx.loss.item() for ctx in seen] == result.metric("loss").tolist()
    assert seen[0].x.shape == (60, 64) and seen[0].y.shape == (60,)
    assert fractions == sorted(fractions) and fractions[-1] == 1.0 and all(0 <= f <= 1 for f in fractions)


def test_class_sorted_batches_are_class_sorted() -> None:
    gen = torch.Generator().manual_seed(0)
    y = DIGITS.y_train
    sorted_batches = batch_schedule(y, 60, 44, "class_sorted", gen)
    classes_per_batch = [len(set(y[b].tolist())) for b in sorted_batches]
    assert max(classes_per_batch) <= 2 and np.mean(classes_per_batch) < 1.5
    shuffled = batch_schedule(y, 60, 44, "shuffled", torch.Generator().manual_seed(0))
    assert min(len(set(y[b].tolist())) for b in shuffled) >= 6  # i.i.d. batches see most classes
    for schedule in (sorted_batches, shuffled):
        epoch = schedule[:22].flatten()  # 1347 // 60 = 22 batches per epoch
        assert len(set(epoch.tolist())) == len(epoch)  # no example twice within an epoch
    assert sorted_batches.shape == (44, 60) and sorted_batches.dtype == torch.int64


def test_evaluate_modes_and_running_stats() -> None:
    model = train(replace(SMALL, steps=30), data=DIGITS).model
    x, y = DIGITS.x_test, DIGITS.y_test
    before = _bn_buffers(model)
    model.train()
    eval_mode = evaluate(model, x, y)
    assert model.training  # the caller's mode comes back
    with torch.no_grad():
        logits = model.eval()(x)
    assert eval_mode.loss == pytest.approx(F.cross_entropy(logits, y).item(), rel=1e-6)
    assert eval_mode.accuracy == pytest.approx((logits.argmax(1) == y).float().mean().item())
    train_mode = evaluate(model, x, y, batch_size=10, mode="train")
    assert train_mode.loss != pytest.approx(eval_mode.loss, rel=1e-4)  # batch statistics of 10 examples differ
    assert all(torch.equal(a, b) for a, b in zip(before, model.buffers(), strict=True))  # untouched by default
    evaluate(model, x, y, batch_size=10, mode="train", update_running_stats=True)
    changed = [not torch.equal(a, b) for a, b in zip(before, model.buffers(), strict=True)]
    assert any(changed)  # the classic bug: validating in train mode moves the running statistics
    with pytest.raises(ValueError):
        evaluate(model, x, y, mode="test")  # type: ignore[arg-type]


def test_cnn_trains_on_digits() -> None:
    cfg = replace(SMALL, model=CNNConfig(), steps=30, lr=0.1, optimizer="momentum")
    result = train(cfg, data=DIGITS)
    loss = result.metric("loss")
    assert loss.iloc[-5:].mean() < loss.iloc[:5].mean()
    assert sorted(set(result.layers["layer"])) == [1, 2] and "zero_frac" in set(result.layers["metric"])


@pytest.mark.parametrize(
    "cfg",
    [
        replace(SMALL, batch_size=1),  # BN with one example per batch
        replace(SMALL, lr=0.0),
        replace(SMALL, optimizer="rmsprop"),  # type: ignore[arg-type]
        replace(SMALL, steps=0),
        replace(SMALL, batch_size=5000),
        replace(SMALL, model=CNNConfig(), data=DataConfig("moons")),
    ],
)
def test_invalid_configs_raise_value_error(cfg: TrainConfig) -> None:
    with pytest.raises(ValueError):
        train(cfg)


def test_a_batch_of_one_is_refused_for_bn_only_with_its_lesson():
    bn_one, plain_one = replace(SMALL, batch_size=1, steps=3), replace(SMALL, batch_size=1, steps=3)
    plain_one = replace(plain_one, model=replace(SMALL.model, norm="none"))
    assert needs_bigger_batch(bn_one) and not needs_bigger_batch(plain_one) and not needs_bigger_batch(SMALL)
    with pytest.raises(ValueError, match="batch of at least 2") as err:
        train(bn_one, data=DIGITS)
    assert BATCH_OF_ONE in str(err.value)
    result = train(plain_one, data=DIGITS)  # without BN one example per step is just SGD
    assert result.status == "trained 3 steps" and result.variant == "no norm"


def test_default_labels_are_the_apps_method_names():
    """ui.charts colours each method by its name: "BN", "no norm", "LN", "GN", "IN"."""
    for norm, label in (("batch", "BN"), ("none", "no norm"), ("layer", "LN"), ("group", "GN"), ("instance", "IN")):
        assert variant_label(replace(SMALL, model=replace(SMALL.model, norm=norm))) == label
    assert variant_label(SMALL, custom_norm=True) == "custom norm"
    assert variant_label(replace(SMALL, variant="mine")) == "mine"


@pytest.mark.slow
def test_fig1_bn_layer_inputs_move_less_than_without_bn() -> None:
    """Ioffe & Szegedy Fig. 1 (b, c): with BN the layer inputs' percentile bands drift less during training."""
    for seed in (0, 1, 2):
        drift = {}
        for norm in ("batch", "none"):
            cfg = fig1_config(norm, seed=seed, steps=300, lr=FIG1_LR, record_grads=False, stats_every=300)
            wide = train(cfg, data=DIGITS).layers.pivot_table(index=["step", "layer"], columns="metric", values="value")
            bands = ["pre_p15", "pre_p50", "pre_p85"]
            drift[norm] = (wide.loc[300, bands] - wide.loc[0, bands]).abs().mean(axis=1)  # per layer
        # the whole net drifts less with BN, and the top hidden layer (the paper's "typical sigmoid") much less
        assert drift["batch"].mean() < drift["none"].mean(), (seed, drift)
        assert drift["batch"].loc[3] < 0.5 * drift["none"].loc[3], (seed, drift)


def test_warm_up_trains_a_tiny_run() -> None:
    seconds = warm_up()
    assert 0 < seconds < 60
