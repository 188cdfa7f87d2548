"""Every sentence the Multi-device page states, built from the result it describes (see bn_core.verdict).

Each function tests one claim on a :class:`StatsResult` or :class:`ReplicaSweepResult`,
decides it with a named threshold below, and writes the sentence for both outcomes.

Sources: Wu & He 2018, arXiv:1803.08494 (per-replica BN degrades with few images per GPU);
Peng et al. 2018, arXiv:1711.07240 (synchronized BN restores the global statistics).
"""

from __future__ import annotations

from bn_core.distributed import LR_REFERENCE_BATCH
from bn_core.experiments.multi_device.base import MIN_PER_REPLICA_IMAGES
from bn_core.experiments.multi_device.replica_sweep import (
    ReplicaSweepConfig,
    ReplicaSweepResult,
    lockstep_steps,
    sweep_lanes,
)
from bn_core.experiments.multi_device.stats import StatsResult
from bn_core.verdict import Verdict, num, pct, ratio

__all__ = [
    "DEGRADE_GAP",
    "EQUIVALENCE_TOL",
    "OVERHEAD_NOTICEABLE",
    "SAME_STATS_TOL",
    "SCATTER_MIN",
    "TRAINED_MIN_ACC",
    "conclusion",
    "sweep_estimate",
    "sweep_refusal",
    "sweep_seconds",
    "SLOW_S",
    "equivalence_verdict",
    "oversubscribed",
    "shard_lesson",
    "spread_verdict",
    "sweep_verdict",
    "time_verdict",
    "volume_verdict",
]

# Synchronized ranks all-reduce the same float64 sums, so their statistics agree bitwise (gap 0);
# a gap above round-off means they did not normalize with the same numbers.
SAME_STATS_TOL = 1e-9
# Per-replica ranks hold different images, so their μ_B differ by far more than round-off; a
# smaller gap would mean their shards had the same statistics.
SCATTER_MIN = 1e-6
# Float64 throughout: the pieces agree to ~1e-15. 1e-6 leaves room for NCCL's reduction order
# on CUDA and still catches any wrong formula (those are off by ≥ 1e-2).
EQUIVALENCE_TOL = 1e-6
# Interleaved step-by-step timings of the same run still wobble by a few percent between
# launches; below 5 % a cost cannot be told from that noise.
OVERHEAD_NOTICEABLE = 1.05
# With 1–3 seeds × 2 ranks the accuracies' lowest–highest band is a few points wide: a gap
# under 5 points could be seed noise.
DEGRADE_GAP = 0.05
# Anything slower than this gets an estimate before it starts (issue 16: estimate anything over 2 s).
SLOW_S = 2.0
# A sweep the class would wait over a minute for is refused, with the way to make it smaller:
# thirty students share the server's cores, and every session waits while it trains.
MAX_SWEEP_S = 60.0
# 10 digit classes: chance is 10 %. Above 50 % test accuracy the net has clearly learned.
TRAINED_MIN_ACC = 0.5


def _plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def oversubscribed(r: StatsResult) -> Verdict:
    """More ranks than cores: the ranks take turns and every all-reduce waits for the slowest."""
    W, cores = r.config.world_size, r.cpu_count
    if cores < W:
        return Verdict(True, f"{W} ranks on {cores} cores: ranks take turns, and every all-reduce waits for them.")
    return Verdict(False, f"{W} ranks on {cores} cores: every rank has a core of its own.")


def shard_lesson(r: StatsResult) -> Verdict:
    """Whether per-replica BN could train at this shard size, and how many values each method sees."""
    W, b, M = r.config.world_size, r.config.images_per_replica, r.values_per_unit
    if r.per_replica_trained:
        return Verdict(True, f"BN normalizes each unit over its rank's {b} values; sync BN over all {W}·{b} = {M}.")
    acc = r.final_accuracy("sync")
    return Verdict(
        False,
        f"With {_plural(b, 'image')} per replica, BN (per-replica statistics) has {_plural(b, 'value')} per unit "
        "in each rank's shard: "
        f"μ_B is that value, x̂ = 0 and the output is just β, so it cannot train (it needs ≥ "
        f"{MIN_PER_REPLICA_IMAGES}) and is left out. sync BN pools the {W} ranks' shards, {W}·{b} = {M} values "
        f"per unit, and can train: {pct(acc)} test accuracy after {r.config.steps} steps.",
    )


def spread_verdict(r: StatsResult, layer: int) -> Verdict:
    """Claim: per-replica ranks normalize with different statistics, synchronized ranks with the same."""
    sync_mu, sync_var = r.max_gap("sync", layer, "mu_B"), r.max_gap("sync", layer, "var_B")
    same = max(sync_mu, sync_var) <= SAME_STATS_TOL
    sync_text = f"sync BN by **{num(sync_mu)}** (σ²_B: {num(sync_var)})"
    W = r.config.world_size
    if not r.per_replica_trained:
        ok = "every rank normalized with the same numbers" if same else "the ranks did NOT normalize alike"
        return Verdict(same, f"Across the {W} ranks, layer {layer}'s μ_B differed with {sync_text}: {ok}.")
    per_mu, per_var = r.max_gap("per_replica", layer, "mu_B"), r.max_gap("per_replica", layer, "var_B")
    head = (
        f"Across the {W} ranks, layer {layer}'s μ_B differed by up to **{num(per_mu)}** with BN "
        f"(per-replica statistics; σ²_B by up to {num(per_var)}), and with {sync_text}"
    )
    if same and per_mu > SCATTER_MIN:
        return Verdict(True, f"{head}: with sync BN every rank normalized with the same numbers, the pooled batch's.")
    if not same:
        return Verdict(False, f"{head}: the synchronized ranks did NOT normalize with the same numbers.")
    return Verdict(False, f"{head}: here even the per-replica shards had the same statistics.")


def equivalence_verdict(r: StatsResult) -> Verdict:
    """Claim: sync BN over W shards equals one process over the whole batch (outputs, gradients, buffers)."""
    W, k = r.config.world_size, r.check_per_rank
    sync = r.equivalence_max("sync")
    head = (
        f"The same random float64 batch, split over the {W} ranks ({_plural(k, 'example')} each), through the "
        f"hand-written sync BN, against one process running `ManualBatchNorm` on all {W * k} examples: the largest "
        f"difference of any output, gradient or running statistic is **{num(sync)}**"
    )
    per = f" BN (per-replica statistics) on the same shards differs by up to {num(r.equivalence_max('per_replica'))}."
    if sync <= EQUIVALENCE_TOL:
        return Verdict(True, f"{head}, float64 round-off (tolerance {num(EQUIVALENCE_TOL)}).{per}")
    return Verdict(False, f"{head}, above the tolerance {num(EQUIVALENCE_TOL)}: they do NOT match.{per}")


def volume_verdict(r: StatsResult) -> Verdict:
    """Claim: the statistics are a small payload next to the gradients, but each call is an extra round trip."""
    bn, grads = r.traffic("sync", "bn_stats"), r.traffic("sync", "gradients")
    more = pct(bn.bytes / grads.bytes) if grads.bytes else "∞"
    head = (
        f"sync BN all-reduces **{bn.bytes:,.0f} bytes** per step in **{bn.calls:.0f} calls**, against "
        f"{grads.bytes:,.0f} bytes of gradients in {grads.calls:.0f} call"
    )
    trips = f"{bn.calls + grads.calls:.0f} all-reduces per step instead of {grads.calls:.0f}"
    if bn.bytes < grads.bytes:
        return Verdict(
            True, f"{head}: {more} more data, but {trips}, each a round trip that waits for the slowest rank."
        )
    return Verdict(False, f"{head}: the statistics outweigh the gradients here ({more} more data), and {trips}.")


def time_verdict(r: StatsResult) -> Verdict:
    """Claim: a synchronized step is measurably slower than a per-replica one (same run, interleaved)."""
    if not r.per_replica_trained:
        return Verdict(
            False,
            "The time cost is measured against BN (per-replica statistics), which cannot train at "
            f"{_plural(r.config.images_per_replica, 'image')} per replica: pick b ≥ {MIN_PER_REPLICA_IMAGES} "
            "to time it.",
        )
    q, shown = ratio(r.step_ms["sync"], r.step_ms["per_replica"], digits=2, unit="ms")
    factor, times = shown.split(" ", 1)  # "3.07×", "(8.44 vs 2.75 ms)"
    where = f"{times[1:-1]}, medians, interleaved step by step; {r.backend} on {r.device}, {r.cpu_count} cores"
    head = f"In this run a sync BN step took **{factor}** as long as a BN step ({where})"
    if q >= OVERHEAD_NOTICEABLE:
        return Verdict(True, f"{head}.")
    noise = pct(OVERHEAD_NOTICEABLE - 1, 0)
    return Verdict(False, f"{head}: within the {noise} that such timings wobble by, no measurable cost.")


def sweep_seconds(cfg: ReplicaSweepConfig, r: StatsResult | None) -> float | None:
    """The sweep's duration with its runs one at a time, from the step times this server just measured
    (section 4), if any. Its runs train :func:`sweep_lanes` at a time, which overlaps their waiting for
    each other's all-reduces, so this is an upper estimate."""
    if r is None or not r.per_replica_trained:
        return None
    return lockstep_steps(cfg) * sum(r.step_ms[v] for v in ("per_replica", "sync", "group")) / 1e3


def sweep_refusal(cfg: ReplicaSweepConfig, r: StatsResult | None) -> Verdict | None:
    """Why the sweep will not start (estimated over :data:`MAX_SWEEP_S`), or None when it may."""
    seconds = sweep_seconds(cfg, r)
    if seconds is None or seconds <= MAX_SWEEP_S:
        return None
    return Verdict(
        False,
        f"This sweep would take about {num(seconds, 2)} s at the step times measured above, more than the "
        f"{num(MAX_SWEEP_S)} s a class can wait for (every student shares the server). Lower the seeds, the epochs "
        "or the ranks W.",
    )


def sweep_estimate(cfg: ReplicaSweepConfig, r: StatsResult | None) -> Verdict:
    """Claim: the sweep takes a while. Estimated from the step times this server just measured (section 4)."""
    steps = lockstep_steps(cfg)
    what = f"{len(cfg.sizes)} sizes × 3 methods × {_plural(cfg.n_seeds, 'seed')}, {steps:,} steps of each method"
    seconds = sweep_seconds(cfg, r)
    if seconds is None:
        return Verdict(True, f"Training {what}…")
    about = f"at most about {num(seconds, 2)} s at the step times measured above"
    lanes = sweep_lanes(cfg)
    if lanes > 1:
        about += f"; {lanes} runs train at once on every rank, so their waiting overlaps"
    return Verdict(seconds > SLOW_S, f"Training {what} ({about})…")


def _points(high: float, low: float) -> float:
    """Accuracy points between two accuracies, as printed by pct (so the sentence adds up)."""
    return round(100 * high, 1) - round(100 * low, 1)


def _change(large: float, small: float) -> str:
    d = _points(large, small)
    return f"lost {d:.1f} points" if d >= 0 else f"gained {-d:.1f} points"


def sweep_verdict(s: ReplicaSweepResult) -> Verdict:
    """Claim (Wu & He, Fig. 1): per-replica BN degrades at few images per replica; sync BN and GN do not."""
    small, large = s.sizes
    acc = {(b, v): s.mean_accuracy(b, v) for b in (small, large) for v in ("per_replica", "sync", "group")}
    head = (
        f"At {small} images per replica BN (per-replica statistics) reached **{pct(acc[small, 'per_replica'])}** "
        f"test accuracy, sync BN **{pct(acc[small, 'sync'])}** and GN **{pct(acc[small, 'group'])}**; at {large}: "
        f"{pct(acc[large, 'per_replica'])}, {pct(acc[large, 'sync'])}, {pct(acc[large, 'group'])}. Going from "
        f"{large} to {small} images per replica, BN {_change(acc[large, 'per_replica'], acc[small, 'per_replica'])}"
        f" and sync BN {_change(acc[large, 'sync'], acc[small, 'sync'])}"
    )
    behind = acc[small, "sync"] - acc[small, "per_replica"] > DEGRADE_GAP
    degraded = acc[large, "per_replica"] - acc[small, "per_replica"] > DEGRADE_GAP
    if behind and degraded:
        return Verdict(True, f"{head}: the shard's statistics are what small per-device batches lack.")
    return Verdict(
        False,
        f"{head}: here BN stayed within {_points(DEGRADE_GAP, 0):.0f} points of sync BN or of its own accuracy at "
        f"{large}, so this sweep (this few epochs and seeds) shows no clear degradation.",
    )


def _batch_of_one_takeaway(r: StatsResult) -> Verdict:
    """With per-replica BN out, the claim is that sync BN still trains (above TRAINED_MIN_ACC)."""
    acc, M, W, b = r.final_accuracy("sync"), r.values_per_unit, r.config.world_size, r.config.images_per_replica
    head = f"With {_plural(b, 'image')} per replica BN cannot train at all; sync BN pools {W}·{b} = {M} values per unit"
    if acc >= TRAINED_MIN_ACC:
        return Verdict(
            True, f"{head} and trains to {pct(acc)} test accuracy: synchronizing makes a tiny per-device batch usable."
        )
    lr = r.config.lr * M / LR_REFERENCE_BATCH
    return Verdict(
        False,
        f"{head} and can train, but at a global batch of {M} the scaled learning rate is {num(lr)} and it reached "
        f"only {pct(acc)} test accuracy after {r.config.steps} steps: more steps would help.",
    )


def conclusion(r: StatsResult) -> Verdict:
    """The page's conclusion, from this run: holds when the statistics and the equivalence say so."""
    if not r.per_replica_trained:
        return _batch_of_one_takeaway(r)
    spread, equal = spread_verdict(r, 1), equivalence_verdict(r)
    if not (spread.holds and equal.holds):
        return Verdict(
            False, "This run does not show the textbook picture: " + (spread if not spread.holds else equal).text
        )
    per_mu = r.max_gap("per_replica", 1, "mu_B")
    bn = r.traffic("sync", "bn_stats")
    layers = int(r.stats["layer"].nunique())
    return Verdict(
        True,
        f"BN under data parallelism normalizes with each rank's shard of {r.config.images_per_replica} images, so "
        f"the ranks' statistics differ (layer 1's μ_B by up to {num(per_mu)} here), and more so as shards shrink. "
        f"sync BN gives every rank the global batch's statistics, equal to one process over all "
        f"{r.values_per_unit} examples to {num(r.equivalence_max('sync'))}, for {bn.calls / layers:.0f} all-reduces "
        "per BN layer and step.",
    )
