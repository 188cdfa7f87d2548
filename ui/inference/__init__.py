"""Train vs Inference page glue, one module per section or lab (mirroring ``bn_core.experiments.inference``).

=================  ===========================================================================
``page``           the state table, the training controls, the page-level words
``run``            the cached shared run and its :class:`~ui.inference.run.Overview`
``ema``            section 1: the EMA of one unit, momentum table, Bessel, the batch-of-1 lesson
``modes``          section 2: one batch in both modes, the train/eval gap
``labs``           section 3: the lab registry (``lab_forgot`` … ``lab_lag``, one module each)
``fold``           section 4: BN folding
``quiz``           the check-yourself questions
``helpers``        chart pieces the sections share
=================  ===========================================================================

Pages draw; these modules return specs, views and text (a function that draws is ``render_*``).
"""

from bn_core.experiments.inference import MIN_TRAIN_BATCH, keras_verdict, momentum_verdict
from ui.inference.ema import MOMENTUM_FRAME, MOMENTUM_NOTE, batch_one, bessel_latex, ema_latex, ema_spec, unit_view
from ui.inference.fold import FOLD_COLUMNS, FOLD_NAMES, FOLD_NOTE, FOLD_TEX, fold_spec, fold_view
from ui.inference.labs import LABS, lab_key, lab_label, lab_text, render_selected
from ui.inference.modes import MODES_TEX, gap_specs, modes_spec, modes_view
from ui.inference.page import STATE, TAKEAWAY, TRY_THIS, config, controls, unit_controls
from ui.inference.quiz import PAGE_ID, quiz_questions
from ui.inference.run import Overview, overview, render_guard

__all__ = [
    "MIN_TRAIN_BATCH",
    "STATE",
    "TAKEAWAY",
    "TRY_THIS",
    "controls",
    "config",
    "unit_controls",
    "Overview",
    "overview",
    "render_guard",
    "ema_latex",
    "ema_spec",
    "unit_view",
    "bessel_latex",
    "batch_one",
    "MOMENTUM_FRAME",
    "MOMENTUM_NOTE",
    "momentum_verdict",
    "keras_verdict",
    "MODES_TEX",
    "modes_view",
    "modes_spec",
    "gap_specs",
    "LABS",
    "lab_key",
    "lab_label",
    "lab_text",
    "render_selected",
    "FOLD_TEX",
    "FOLD_NAMES",
    "FOLD_NOTE",
    "FOLD_COLUMNS",
    "fold_view",
    "fold_spec",
    "PAGE_ID",
    "quiz_questions",
]
