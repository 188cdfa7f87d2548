"""Check-yourself questions whose answers come from the live result on the page.

A page's experiment module builds its questions from the result it just computed,
so a numeric answer ("what is σ²_B of feature 0 in this batch?") changes with the
seed and is never typed in. The UI (``ui.quiz``) draws them, checks an answer with
:meth:`Question.check` and shows :attr:`Question.explain`; the answer is kept in
session state, never in the URL.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

__all__ = ["Question"]


@dataclass(frozen=True)
class Question:
    """One check-yourself question."""

    key: str  # stable id within the page ("var_B"); also the live-class question id
    prompt: str  # markdown; may quote live numbers
    kind: Literal["choice", "number"]  # a radio of options, or a number box
    answer: str | float  # the correct option, or the correct number (from the live result)
    explain: str  # markdown shown after an answer: why, with the live numbers
    options: tuple[str, ...] = ()  # the choices, for kind="choice"
    rel_tol: float = 0.02  # number answers: accepted relative error (2 %: reading a chart or rounding)
    abs_tol: float = 0.0  # number answers: accepted absolute error (answers near 0)

    def __post_init__(self) -> None:
        if self.kind == "choice" and self.answer not in self.options:
            raise ValueError(f"question {self.key!r}: the answer {self.answer!r} is not one of its options")
        if self.kind == "number" and not math.isfinite(float(self.answer)):
            raise ValueError(f"question {self.key!r}: the answer {self.answer!r} is not a finite number")

    def check(self, given: str | float | None) -> bool:
        """Whether ``given`` is right: the same option, or a number within the tolerances."""
        if given is None:
            return False
        if self.kind == "choice":
            return given == self.answer
        try:
            value = float(given)
        except (TypeError, ValueError):
            return False
        return math.isclose(value, float(self.answer), rel_tol=self.rel_tol, abs_tol=self.abs_tol)
