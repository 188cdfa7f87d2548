"""Train vs Inference, lab 5: at a high learning rate the EMA trails the weights; precise BN does not.

The EMA mixes statistics of *past* weights. At a high learning rate the weights move fast,
so the running statistics trail the population statistics of the current weights, which
precise BN recomputes with the weights frozen (:mod:`bn_core.precise_bn`). Two recorded
runs (:mod:`.run`) that differ only in learning rate are compared.

Sources: Wu & Johnson 2021, arXiv:2105.07576 (§3, EMA staleness and precise BN).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from bn_core.experiments.inference.ema import half_life
from bn_core.experiments.inference.run import InferenceRun
from bn_core.verdict import Verdict, num, pct

__all__ = ["LAG_STALER", "LAG_FAST_HALF_LIFE", "LagResult", "lag_lab", "lag_verdict"]

# The EMA is "staler" at the high rate when its distance to the population mean is at least 20 %
# larger: the three-seed test finds the effect at this margin, and one run's late mean scatters less.
LAG_STALER = 1.2
# An EMA whose half-life is at most 20 steps forgets fast enough to keep up with the weights
# (they move little in 20 steps at these rates), so the page points to the Keras-like preset.
LAG_FAST_HALF_LIFE = 20.0


@dataclass(frozen=True, eq=False)
class LagResult:
    trace: pd.DataFrame  # step, run (lr label), metric (acc_ema, acc_precise, stat_error), value
    summary: pd.DataFrame  # run, lr, status, diverged_at, gap (late acc_precise − acc_ema), stat_error, finals
    momentum: float | None  # the runs' BN momentum


def _lag_rows(run: InferenceRun, label: str) -> pd.DataFrame:
    checks = run.checks
    acc = checks[checks["metric"].isin(["acc_ema", "acc_precise"])][["step", "metric", "value"]]
    err = checks[checks["metric"] == "stat_error"].groupby("step", as_index=False)["value"].mean()
    return pd.concat([acc, err.assign(metric="stat_error")], ignore_index=True).assign(run=label)


def _summary_row(run: InferenceRun, rows: pd.DataFrame, label: str) -> tuple:
    wide = rows.pivot_table(index="step", columns="metric", values="value")
    late = wide[wide.index >= wide.index.max() / 2]
    gap = float((late["acc_precise"] - late["acc_ema"]).mean())
    return (label, run.config.lr, run.status, run.diverged_at, gap, float(late["stat_error"].mean()),
            float(wide["acc_ema"].iloc[-1]), float(wide["acc_precise"].iloc[-1]))  # fmt: skip


def lag_lab(calm: InferenceRun, fast: InferenceRun) -> LagResult:
    """Compare the EMA with precise BN along two recorded runs that differ in learning rate."""
    traces, summary = [], []
    for run in (calm, fast):
        label = f"lr = {run.config.lr:g}"
        rows = _lag_rows(run, label)
        summary.append(_summary_row(run, rows, label))
        traces.append(rows)
    columns = ["run", "lr", "status", "diverged_at", "gap", "stat_error", "acc_ema_final", "acc_precise_final"]
    return LagResult(
        trace=pd.concat(traces, ignore_index=True),
        summary=pd.DataFrame(summary, columns=columns),
        momentum=calm.config.momentum,
    )


def _hint(m: float | None) -> str:
    if m is None or half_life(m)[1] > LAG_FAST_HALF_LIFE:
        return ""
    return (
        f" With momentum {m:g} the EMA forgets fast (half-life {num(half_life(m)[1])} steps), so it keeps up; "
        "the *EMA lag* preset uses Keras's default 0.99 (PyTorch 0.01)."
    )


def _signed(fraction: float) -> str:
    return f"{100 * fraction:+.1f} %"


def lag_verdict(r: LagResult) -> Verdict:
    """Is the EMA staler at the high learning rate than at the page's rate?"""
    calm, fast = r.summary.iloc[0], r.summary.iloc[-1]
    for row in (calm, fast):
        if not pd.isna(row["diverged_at"]):
            return Verdict(False, f"Verdict: at lr {row['lr']:g} training {row['status']}: no EMA to compare. "
                                  "Pick a lower learning rate.")  # fmt: skip
    if fast["lr"] <= calm["lr"]:
        return Verdict(False, f"Verdict: the comparison rate ({fast['lr']:g}) is not above the page's "
                              f"({calm['lr']:g}): pick a higher one to see the EMA lag.")  # fmt: skip
    staler = fast["stat_error"] >= LAG_STALER * calm["stat_error"]
    how = "vs" if staler else f"under {num(LAG_STALER)}× the"
    m = "None (cumulative average)" if r.momentum is None else f"{r.momentum:g}"
    text = (
        f"Verdict (second half of training, momentum {m}): at lr {fast['lr']:g} the EMA sat "
        f"**{num(fast['stat_error'])}** std from the population mean of the current weights, {how} "
        f"{num(calm['stat_error'])} at lr {calm['lr']:g}; recomputing the statistics (precise BN) changed test "
        f"accuracy by **{_signed(fast['gap'])}** on average at lr {fast['lr']:g} and {_signed(calm['gap'])} at "
        f"lr {calm['lr']:g}. Final: EMA {pct(fast['acc_ema_final'])}, precise {pct(fast['acc_precise_final'])}."
    )
    return Verdict(bool(staler), text + ("" if staler else _hint(r.momentum)))
