"""Why BN Works, check yourself: the questions from the live Noisy BN and Scale invariance results.

The questions are built by :func:`bn_core.experiments.why.quiz.questions`; ``ui.quiz``
draws them.
"""

from __future__ import annotations

from bn_core.experiments.why.noisy import NoisyConfig
from bn_core.experiments.why.quiz import questions as build
from bn_core.experiments.why.scale import ScaleConfig
from bn_core.quiz import Question
from ui.cache import cached
from ui.why import noisy, scale

PAGE_ID = "why"


@cached(max_entries=64)
def _questions(noisy_cfg: NoisyConfig, scale_cfg: ScaleConfig) -> tuple[Question, ...]:
    try:
        trained = noisy.compute(noisy_cfg)
    except ValueError:
        return ()  # the Noisy BN tab says why it cannot run
    try:
        layer = scale.compute(scale_cfg)
    except ValueError:
        layer = None
    return build(trained, layer)


def questions() -> tuple[Question, ...]:
    """The page's questions with the current controls (none when the Noisy BN tab cannot run)."""
    return _questions(noisy.config(), scale.config())
