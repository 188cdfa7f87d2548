"""The single-run training engine: one seeded run in, long-format DataFrames and the trained model out.

``from bn_core.train import train, TrainConfig, …`` works as before; the engine is cut
along its seams:

=====================  ====================================================================
``config``             :class:`TrainConfig`, its validation, labels, the paper's Fig. 1 preset
``schedule``           seeds, batch orders (shuffled / class-sorted), the probe rows, optimizers
``loop``               :func:`train`: the readable loop, divergence, :class:`TrainResult`
``records``            layer statistics on the probe batch, long-format frames
``evaluation``         :func:`evaluate` and :func:`collect_taps` in train or eval mode
``fine_tune``          :func:`fine_tune`: SGD on some parameters of a trained model (frozen backbones)
=====================  ====================================================================

Many configurations at once (grids, sweeps) go through :mod:`bn_core.sweep`, which
reproduces :func:`train` configuration by configuration.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167; Kingma & Ba 2014, arXiv:1412.6980.
"""

from bn_core.train.config import (
    BATCH_OF_ONE,
    BATCH_ORDERS,
    FIG1_LR,
    FIG1_STEPS,
    FIG1_TARGET_ACC,
    OPTIMIZERS,
    TrainConfig,
    fig1_config,
    fit_model,
    needs_bigger_batch,
    validate_config,
    variant_label,
)
from bn_core.train.evaluation import EvalResult, ModelMode, collect_taps, evaluate
from bn_core.train.fine_tune import fine_tune
from bn_core.train.loop import StepContext, TrainResult, concat_results, train, warm_up
from bn_core.train.schedule import batch_schedule, fixed_rows, make_optimizer, run_schedule, stream_seed

__all__ = [
    "fine_tune",
    "OPTIMIZERS",
    "BATCH_ORDERS",
    "BATCH_OF_ONE",
    "TrainConfig",
    "TrainResult",
    "StepContext",
    "EvalResult",
    "ModelMode",
    "train",
    "concat_results",
    "evaluate",
    "collect_taps",
    "batch_schedule",
    "run_schedule",
    "fixed_rows",
    "make_optimizer",
    "fig1_config",
    "fit_model",
    "FIG1_LR",
    "FIG1_STEPS",
    "FIG1_TARGET_ACC",
    "needs_bigger_batch",
    "variant_label",
    "validate_config",
    "warm_up",
    "stream_seed",
]
