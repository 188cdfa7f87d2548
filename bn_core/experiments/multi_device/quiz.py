"""Check-yourself questions for the Multi-device page, built from the live :class:`StatsResult`.

Numeric answers are the numbers the page states (the ranks' μ_B gap, the step-time ratio),
so they change with the seed and the controls; the explanations quote them.
"""

from __future__ import annotations

from bn_core.distributed import replica_model_config
from bn_core.distributed.config import GN_GROUP_TARGET, DistConfig
from bn_core.experiments.multi_device.stats import StatsResult
from bn_core.layers import default_groups
from bn_core.quiz import Question
from bn_core.verdict import num, pct, ratio

__all__ = ["questions"]

WHY_ANSWER = "Each rank all-reduces its channels' count, Σx and Σx², so every rank computes the same global μ_B, σ²_B"
WHY_OPTIONS = (
    "Every rank trains on the same images",
    WHY_ANSWER,
    "In training, sync BN normalizes with the running statistics",
    "The ranks share one copy of the weights in memory",
)
B1_ANSWER = "sync BN and GN"
B1_OPTIONS = ("only BN", B1_ANSWER, "all three", "none of them")


def _gap(r: StatsResult, layer: int) -> Question:
    per, sync = r.max_gap("per_replica", layer, "mu_B"), r.max_gap("sync", layer, "mu_B")
    return Question(
        key="gap",
        prompt=f"Section 1: by how much at most did the ranks' μ_B of layer {layer} differ with BN "
        "(per-replica statistics)?",
        kind="number",
        answer=per,
        rel_tol=0.01,  # the page prints 3 significant digits
        explain=f"Section 1 states **{num(per)}**: each rank normalizes with its own shard's mean. "
        f"With sync BN the gap was {num(sync)}.",
    )


def _count(r: StatsResult) -> Question:
    W, b = r.config.world_size, r.config.images_per_replica
    return Question(
        key="count",
        prompt=f"With {W} ranks × {b} image{'s' if b != 1 else ''} per replica, over how many values does one "
        "unit of a sync BN layer (in this MLP) compute μ_B at each step?",
        kind="number",
        answer=float(r.values_per_unit),
        rel_tol=0.0,
        explain=f"Every rank's count, Σx and Σx² are summed over the {W} ranks: {W}·{b} = **{r.values_per_unit}** "
        f"values. BN (per-replica statistics) uses its shard's {b} only.",
    )


def _why(r: StatsResult, layer: int) -> Question:
    sync = r.max_gap("sync", layer, "mu_B")
    per = r.max_gap("per_replica", layer, "mu_B")
    versus = f", against {num(per)} with BN" if per is not None else ""
    return Question(
        key="why",
        prompt="Why do the ranks' μ_B and σ²_B coincide with sync BN?",
        kind="choice",
        answer=WHY_ANSWER,
        options=WHY_OPTIONS,
        explain=f"The shards are disjoint (rank k takes its own b columns of each global batch), yet with sync BN "
        f"the ranks' μ_B differed by {num(sync)}{versus}: one all-reduce of {{count, Σx, Σx²}} per layer gives "
        "every rank the statistics of the pooled batch.",
    )


def _ratio(r: StatsResult) -> Question:
    q, shown = ratio(r.step_ms["sync"], r.step_ms["per_replica"], digits=2, unit="ms")
    return Question(
        key="ratio",
        prompt="Section 4: how many times as long as a BN step did a sync BN step take in this run?",
        kind="number",
        answer=q,
        rel_tol=0.01,
        explain=f"{shown}: the same forward and backward plus the BN layers' extra all-reduces, each a round trip "
        "that waits for the slowest rank.",
    )


def _batch_of_one(r: StatsResult) -> Question:
    W = r.config.world_size
    width = replica_model_config(DistConfig()).width  # the page's MLP: DistConfig's default width
    groups = default_groups(width, GN_GROUP_TARGET)
    per_group = width // groups
    live = "" if r.per_replica_trained else f" (this run: sync BN reached {pct(r.final_accuracy('sync'))})"
    return Question(
        key="batch_of_one",
        prompt="With 1 image per replica, which of BN (per-replica statistics), sync BN and GN can still train?",
        kind="choice",
        answer=B1_ANSWER,
        options=B1_OPTIONS,
        explain=f"BN's shard has 1 value per unit, so x̂ = 0 and the output is just β. sync BN pools the {W} ranks: "
        f"{W} values per unit{live}. GN never looks across examples: {groups} groups of {per_group} channels "
        "within each image.",
    )


def questions(r: StatsResult, layer: int = 1) -> tuple[Question, ...]:
    """3–5 questions on this run: the μ_B gap and the time ratio only when per-replica BN trained."""
    if not r.per_replica_trained:
        return (_count(r), _why(r, layer), _batch_of_one(r))
    return (_gap(r, layer), _count(r), _why(r, layer), _ratio(r), _batch_of_one(r))
