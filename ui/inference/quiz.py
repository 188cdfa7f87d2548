"""Train vs Inference: the check-yourself questions, from the shared run (cached apiece)."""

from __future__ import annotations

from bn_core.experiments.inference import InferenceConfig, batch_of_one_errors, questions
from bn_core.quiz import Question
from ui.cache import cached
from ui.inference.run import compute

PAGE_ID = "inference"


@cached(max_entries=24)
def quiz_questions(cfg: InferenceConfig) -> tuple[Question, ...]:
    run = compute(cfg)
    return questions(run, batch_of_one_errors(run))
