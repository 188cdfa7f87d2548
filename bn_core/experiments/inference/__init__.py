"""Train vs Inference: running statistics, the train/eval switch, the classic bugs, and BN folding.

One real training run (:func:`run_inference`, a small BN MLP on the digits) records every BN
unit's batch, running and population statistics; every section and lab starts from it.

=================  ==========================================================================
``base``           :class:`InferenceConfig`, model/engine configs, the batch-of-1 stand-in
``run``            :func:`run_inference`: the recorded run, :func:`trained_model`
``ema``            section 1: the EMA of one unit, momentum conventions, Bessel's correction
``modes``          section 2: the same batch in train and in eval mode, the train/eval gap
``batch_one``      the batch-of-1 lesson on this network (μ_B = x, σ²_B = 0, x̂ = 0)
``lab_forgot``     lab 1: forgot ``model.eval()``
``lab_validation``  lab 2: validation run in train mode
``lab_finetune``   lab 3: ``requires_grad=False`` does not freeze the running statistics
``lab_shift``      lab 4: domain shift and AdaBN
``lab_lag``        lab 5: at a high learning rate the EMA lags; precise BN does not
``fold``           section 4: BN folding, checked and timed
``quiz``           the check-yourself questions from the live run
=================  ==========================================================================

Every sentence the page shows with a number or a verdict is a :class:`bn_core.verdict.Verdict`
built in these modules from the result it describes, with its thresholds as named constants.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (§3.1 inference); Wu & Johnson 2021,
arXiv:2105.07576 (precise BN, EMA staleness); Li et al. 2016, arXiv:1603.04779 (AdaBN);
Jacob et al. 2018, arXiv:1712.05877 (folding).
"""

from bn_core.experiments.inference.base import (
    DIGITS,
    MIN_TRAIN_BATCH,
    MOMENTA,
    InferenceConfig,
    model_config,
    momentum_label,
    train_config,
    trainable_config,
)
from bn_core.experiments.inference.batch_one import BatchOfOne, batch_of_one, stand_in_note
from bn_core.experiments.inference.ema import (
    Bessel,
    UnitStats,
    bessel_table,
    bessel_verdict,
    ema_legend,
    ema_slice,
    final_stats,
    half_life,
    keras_verdict,
    momentum_table,
    momentum_verdict,
    unit_verdict,
)
from bn_core.experiments.inference.fold import FOLD_ARCHS, FoldResult, FoldVerdicts, fold_lab, fold_verdicts
from bn_core.experiments.inference.lab_finetune import (
    FT_CLASSES,
    FT_STEPS,
    FinetuneResult,
    finetune_lab,
    finetune_verdict,
)
from bn_core.experiments.inference.lab_forgot import EVAL_SIZES, ForgotEvalResult, forgot_eval_lab, forgot_verdict
from bn_core.experiments.inference.lab_lag import LagResult, lag_lab, lag_verdict
from bn_core.experiments.inference.lab_shift import ShiftResult, shift_inputs, shift_lab, shift_verdict
from bn_core.experiments.inference.lab_validation import ValidationResult, validation_lab, validation_verdict
from bn_core.experiments.inference.modes import (
    GapVerdicts,
    ModeError,
    TwoModes,
    batch_of_one_errors,
    gap_verdicts,
    modes_verdict,
    two_modes,
)
from bn_core.experiments.inference.quiz import questions
from bn_core.experiments.inference.run import (
    GAP_SIZES,
    InferenceRun,
    layer_outputs,
    run_inference,
    run_verdict,
    trained_model,
)

__all__ = [
    "MOMENTA",
    "MIN_TRAIN_BATCH",
    "DIGITS",
    "GAP_SIZES",
    "EVAL_SIZES",
    "FOLD_ARCHS",
    "FT_CLASSES",
    "FT_STEPS",
    "InferenceConfig",
    "InferenceRun",
    "run_inference",
    "run_verdict",
    "model_config",
    "train_config",
    "trainable_config",
    "trained_model",
    "layer_outputs",
    "momentum_label",
    "UnitStats",
    "Bessel",
    "half_life",
    "momentum_table",
    "ema_slice",
    "ema_legend",
    "bessel_table",
    "final_stats",
    "unit_verdict",
    "bessel_verdict",
    "momentum_verdict",
    "keras_verdict",
    "ModeError",
    "TwoModes",
    "GapVerdicts",
    "two_modes",
    "batch_of_one_errors",
    "modes_verdict",
    "gap_verdicts",
    "BatchOfOne",
    "batch_of_one",
    "stand_in_note",
    "ForgotEvalResult",
    "forgot_eval_lab",
    "forgot_verdict",
    "ValidationResult",
    "validation_lab",
    "validation_verdict",
    "FinetuneResult",
    "finetune_lab",
    "finetune_verdict",
    "ShiftResult",
    "shift_inputs",
    "shift_lab",
    "shift_verdict",
    "LagResult",
    "lag_lab",
    "lag_verdict",
    "FoldResult",
    "FoldVerdicts",
    "fold_lab",
    "fold_verdicts",
    "questions",
]
