"""Training Comparison: one BN-vs-no-norm comparison as a frozen config, and the cost guard.

The two nets of a comparison share everything in :class:`ComparisonConfig`; only the
normalization differs (:func:`side_config`). The cost guard estimates the CPU seconds a
setting needs, so one student's extreme controls cannot stall a shared 2-core server.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1: 3 × 100 sigmoid units, batch 60, SGD).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from bn_core.data import DataConfig
from bn_core.device import pick_device
from bn_core.models import CNNConfig, MLPConfig, ModelConfig
from bn_core.train import FIG1_LR, FIG1_STEPS, TrainConfig

__all__ = [
    "VARIANTS",
    "NORMS",
    "SNAPSHOTS",
    "EVALS",
    "MAX_RUN_S",
    "MAX_GRID_S",
    "ComparisonConfig",
    "n_layers",
    "side_config",
    "snapshot_steps",
    "macs_per_example",
    "estimated_seconds",
    "check_cost",
]

VARIANTS = ("BN", "no norm")  # the 'variant' labels, BN first (the names ui.charts colours)
NORMS: tuple[Literal["batch", "none"], ...] = ("batch", "none")  # the engine's norm for each variant
SNAPSHOTS = 12  # layer records (and histograms) at 0 and every steps/12 updates
EVALS = 24  # train/test evaluations per run (and at step 0)


@dataclass(frozen=True)
class ComparisonConfig:
    """One BN-vs-no-norm comparison: everything the two runs share. Defaults = Ioffe & Szegedy Fig. 1 on digits."""

    dataset: str = "digits"  # bn_core.data.DATASETS; the CNN needs digits (8×8 images)
    ill_scaled: bool = False  # multiply input feature j by a fixed factor in [1, 1000] (log-spaced)
    arch: Literal["mlp", "cnn"] = "mlp"  # fully connected net, or the small CNN (2 conv blocks, BatchNorm2d)
    depth: int = 3  # hidden layers of the MLP, 1 … 10 (the CNN always has 2 conv blocks)
    width: int = 100  # units per hidden layer of the MLP (Fig. 1: 100)
    activation: Literal["sigmoid", "tanh", "relu"] = "sigmoid"  # the nonlinearity (Fig. 1: sigmoid)
    placement: Literal["before", "after"] = "before"  # BN before the nonlinearity (paper) or after it
    init_scale: float = 1.0  # multiplies every default-initialized weight, identically for both nets
    optimizer: Literal["sgd", "momentum", "adam"] = "sgd"  # plain SGD (Fig. 1), SGD + momentum 0.9, or Adam
    lr: float = FIG1_LR  # learning rate, the same for both nets
    batch_size: int = 60  # examples per step (Fig. 1: 60)
    steps: int = FIG1_STEPS  # optimizer updates
    backend: Literal["manual", "torch"] = "manual"  # BN by hand (bn_core.layers) or torch.nn.BatchNorm
    seed: int = 0  # init weights, batch order and the data split
    dtype: Literal["float32", "float64"] = "float32"  # float64 only for exact comparisons


def n_layers(cfg: ComparisonConfig) -> int:
    """Hidden layers the page can inspect: the MLP's depth, or the CNN's 2 conv blocks."""
    return cfg.depth if cfg.arch == "mlp" else 2


def _model(cfg: ComparisonConfig, norm: Literal["batch", "none"]) -> ModelConfig:
    shared = {
        "activation": cfg.activation,
        "norm": norm,
        "backend": cfg.backend,
        "placement": cfg.placement,
        "init_scale": cfg.init_scale,
    }
    if cfg.arch == "cnn":
        return CNNConfig(**shared)
    return MLPConfig(depth=cfg.depth, width=cfg.width, **shared)


def side_config(cfg: ComparisonConfig, norm: Literal["batch", "none"]) -> TrainConfig:
    """The engine config of one side of the comparison (BN: ``norm="batch"``)."""
    if cfg.arch not in ("mlp", "cnn"):
        raise ValueError(f"Unknown architecture {cfg.arch!r}; choose mlp or cnn.")
    return TrainConfig(
        data=DataConfig(cfg.dataset, seed=cfg.seed, ill_scaled=cfg.ill_scaled),
        model=_model(cfg, norm),
        optimizer=cfg.optimizer,
        lr=cfg.lr,
        batch_size=cfg.batch_size,
        steps=cfg.steps,
        eval_every=max(1, cfg.steps // EVALS),
        stats_every=max(1, cfg.steps // SNAPSHOTS),
        seed=cfg.seed,
        variant=VARIANTS[NORMS.index(norm)],
        dtype=cfg.dtype,
    )


def snapshot_steps(cfg: ComparisonConfig) -> tuple[int, ...]:
    """The steps with layer records and histograms: 0, every steps/12 updates, and the last."""
    every = max(1, cfg.steps // SNAPSHOTS)
    return tuple(sorted({*range(0, cfg.steps + 1, every), cfg.steps}))


MAX_RUN_S = 30.0  # estimated CPU seconds for a comparison (two nets) or a backend check
MAX_GRID_S = 60.0  # estimated CPU seconds for one grid
MAC_PER_S = 1e10  # multiply-adds per second, forward + backward, 1 thread (measured order of magnitude here)
_STEP_S, _LAYER_S, _BN_S = 4e-4, 1e-4, 3.5e-4  # Python overhead per step, per layer, per hand-written BN layer


def macs_per_example(cfg: ComparisonConfig) -> float:
    """Multiply-adds of one forward pass (inputs ≤ 64 features, 10 classes: the largest of our datasets)."""
    if cfg.arch == "cnn":
        c1, c2 = CNNConfig().channels
        return 64 * c1 * 9 + 16 * c2 * 9 * c1 + c2 * 10  # conv 8×8 (stride 1), conv 4×4 (stride 2), head
    return 64 * cfg.width + (cfg.depth - 1) * cfg.width**2 + cfg.width * 10


def estimated_seconds(cfg: ComparisonConfig) -> float:
    """Rough CPU seconds to train the BN and the no-norm net of ``cfg`` (calibrated on Fig. 1: ≈ 2 s)."""
    layers = n_layers(cfg)
    flops = 3 * cfg.batch_size * macs_per_example(cfg) / MAC_PER_S  # forward + backward ≈ 3 forwards
    per_step = 2 * (_STEP_S + layers * _LAYER_S + flops) + layers * _BN_S
    return cfg.steps * per_step


def check_cost(seconds: float, limit: float, what: str) -> None:
    """Refuse (``ValueError``) a computation estimated above ``limit`` CPU seconds, on the CPU only."""
    if pick_device().type == "cpu" and seconds > limit:
        raise ValueError(
            f"{what} would take about {seconds:.0f} s of CPU on this machine; the limit is {limit:.0f} s, so that "
            "one setting cannot stall the lab for the whole class. Lower the steps, batch size, width, depth or "
            "(for the grids) the seeds or steps per network."
        )
