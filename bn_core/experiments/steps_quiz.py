"""Check-yourself questions for the Normalization Steps page, from the batch on screen.

The numeric answers are read off the live :class:`~bn_core.experiments.steps.StepsResult`,
so they change with the seed, the data and every control.
"""

from __future__ import annotations

from bn_core.experiments.steps import StepsResult
from bn_core.quiz import Question
from bn_core.verdict import num

__all__ = ["questions"]


def questions(r: StepsResult, j: int, i: int) -> tuple[Question, ...]:
    """Four questions about feature ``j`` and example ``i`` of this batch."""
    s, name, m = r.stats.iloc[j], r.columns[j], r.x.shape[0]
    var_B, mu_B = float(s.var_B), float(s.mu_B)
    x_hat_i = float(r.x_hat[i, j])
    return (
        Question(
            "var_B",
            f"What is σ²_B of feature `{name}` in this batch (read it off the equations or the table)?",
            "number",
            var_B,
            f"σ²_B = (1/m)·Σ(x_i − μ_B)² over the m = {m} values of `{name}`: {num(var_B, 4)}. It divides by m, "
            "not m − 1: the forward pass uses the biased variance.",
            rel_tol=0.01,
            abs_tol=1e-12,
        ),
        Question(
            "x_hat",
            f"What is x̂ of example {i}, feature `{name}`?",
            "number",
            x_hat_i,
            f"x̂ = (x − μ_B)/√(σ²_B + ε) = ({num(float(r.x[i, j]), 6)} − {num(mu_B, 6)})/√({num(var_B)} + "
            f"{num(r.eps)}) = {num(x_hat_i, 4)}.",
            rel_tol=0.01,
            abs_tol=1e-3,
        ),
        Question(
            "undo",
            "You set γ = σ_B = √(σ²_B + ε) and β = μ_B for a feature. What is y then?",
            "choice",
            "y = x: BN undoes itself",
            options=("y = x̂", "y = x: BN undoes itself", "y = 0", "y = β for every example"),
            explain=f"y = σ_B·(x − μ_B)/σ_B + μ_B = x. For `{name}` that is γ = {num(float(s.sigma_B), 4)}, "
            f"β = {num(mu_B, 4)}: the press of a button below shows it. γ and β let the network keep any scale "
            "and shift, including none at all.",
        ),
        Question(
            "batch_of_one",
            "Set the batch size N to 1. What would train-mode BN output for every feature?",
            "choice",
            "β: μ_B is the value itself, so x̂ = 0",
            options=("the input x, unchanged", "β: μ_B is the value itself, so x̂ = 0", "γ", "NaN"),
            explain="With one value, μ_B = x and σ²_B = 0, so x̂ = 0/√ε = 0 and y = β: the input is erased and no "
            "gradient reaches it. That is why PyTorch refuses a batch of 1 in train mode.",
        ),
    )
