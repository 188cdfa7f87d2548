"""Why BN Works, check yourself: the questions from the live Noisy BN and Scale invariance results.

The questions are built by :func:`bn_core.experiments.why.quiz.questions`; ``ui.quiz``
draws them.
"""

from __future__ import annotations

from bn_core.experiments.why.quiz import questions as build
from bn_core.quiz import Question
from ui.why import noisy, scale

PAGE_ID = "why"


def questions() -> tuple[Question, ...]:
    """The page's questions with the current controls (none when the Noisy BN tab cannot run)."""
    try:
        trained = noisy.compute(noisy.config())
    except ValueError:
        return ()
    try:
        layer = scale.compute(scale.config())
    except ValueError:
        layer = None
    return build(trained, layer)
