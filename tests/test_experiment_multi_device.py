"""Multi-device verdicts and questions on small synthetic results: each claim both ways, answers for two seeds.

No worker process starts here: the results are built by hand (``fake``), so every test is fast.
The real launches are tested in test_distributed.py and test_page_multi_device.py.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np
import pandas as pd
import pytest

from bn_core.experiments.multi_device import (
    ReplicaSweepConfig,
    ReplicaSweepResult,
    StatsConfig,
    StatsResult,
    questions,
    stats_variants,
    verdicts,
)
from bn_core.experiments.multi_device.stats import _spread, _with_pooled


def _raw_stats(rng: np.random.Generator, variants, W: int, steps: int, sync_gap: float) -> pd.DataFrame:
    rows = []
    for variant in variants:
        for step in range(1, steps + 1):
            for layer in (1, 2):
                for metric in ("mu_B", "var_B"):
                    shared = rng.normal(0.0, 1.0) + (1.0 if metric == "var_B" else 0.0)
                    for rank in range(W):
                        own = rng.normal(0.0, 0.3) if variant == "per_replica" else sync_gap * rank
                        rows.append((variant, rank, step, layer, metric, shared + own))
    return pd.DataFrame(rows, columns=["variant", "rank", "step", "layer", "metric", "value"])


def fake(
    seed: int = 0,
    *,
    W: int = 2,
    b: int = 4,
    sync_gap: float = 0.0,
    eq_sync: float = 4e-16,
    sync_ms: float = 8.444,
    per_ms: float = 2.746,
    acc: float = 0.9,
    bn_bytes: float = 4096.0,
    cores: int = 2,
) -> StatsResult:
    """A StatsResult with random statistics: per-replica ranks scatter, synchronized ones differ by sync_gap."""
    rng = np.random.default_rng(seed)
    variants = stats_variants(b)
    bn = [v for v in variants if v != "group"]
    raw = _raw_stats(rng, bn, W, 5, sync_gap)
    curves = pd.DataFrame(
        [(5, v, rank, acc) for v in variants for rank in range(W)], columns=["step", "variant", "rank", "value"]
    )
    eq = [("sync", q, eq_sync) for q in ("y", "dx")] + [("per_replica", q, 0.5) for q in ("y", "dx")]
    volume = [("sync", "bn_stats", 4.0, bn_bytes, bn_bytes), ("sync", "gradients", 1.0, 36904.0, 36904.0)]
    return StatsResult(
        config=StatsConfig(world_size=W, images_per_replica=b, seed=seed),
        variants=variants,
        stats=_with_pooled(raw),
        spread=_spread(raw),
        curves=curves,
        equivalence=pd.DataFrame(eq, columns=["variant", "quantity", "max_abs_diff"]),
        timing=pd.DataFrame(columns=["variant", "component", "ms"]),
        volume=pd.DataFrame(volume, columns=["variant", "kind", "calls", "bytes", "formula_bytes"]),
        step_ms={"sync": sync_ms, "group": 1.0} | ({"per_replica": per_ms} if "per_replica" in variants else {}),
        check_per_rank=min(b, 8),
        backend="gloo",
        device="cpu",
        torch_sync_note=None,
        startup_s=1.0,
        wall_s=2.0,
        cpu_count=cores,
    )


def fake_sweep(per_small: float, sync_small: float = 0.9) -> ReplicaSweepResult:
    acc = {(2, "per_replica"): per_small, (2, "sync"): sync_small, (2, "group"): 0.88}
    acc |= {(16, "per_replica"): 0.91, (16, "sync"): 0.92, (16, "group"): 0.89}
    summary = pd.DataFrame(
        [(b, v, a, a - 0.01, a + 0.01) for (b, v), a in acc.items()],
        columns=["images_per_replica", "variant", "mean", "lo", "hi"],
    )
    return ReplicaSweepResult(ReplicaSweepConfig(sizes=(2, 16)), pd.DataFrame(), summary, pd.DataFrame(), 1.0)


def _gap(r: StatsResult, variant: str, layer: int = 1, metric: str = "mu_B") -> float:
    """Recomputed from the per-rank series, independently of StatsResult.spread."""
    s = r.stats[(r.stats["variant"] == variant) & (r.stats["layer"] == layer) & (r.stats["metric"] == metric)]
    s = s[s["series"] != "pooled"]
    return float(s.groupby("step")["value"].agg(lambda v: v.max() - v.min()).max())


# ---------------------------------------------------------------------------
# Verdicts: each claim holds on one result and fails on another
# ---------------------------------------------------------------------------


def test_oversubscribed_only_with_more_ranks_than_cores():
    assert verdicts.oversubscribed(fake(W=4, cores=2)).holds
    assert "4 ranks on 2 cores" in verdicts.oversubscribed(fake(W=4, cores=2)).text
    assert not verdicts.oversubscribed(fake(W=2, cores=2)).holds


def test_shard_lesson_names_the_values_per_unit():
    assert verdicts.shard_lesson(fake(b=4)).holds and "2·4 = 8" in verdicts.shard_lesson(fake(b=4)).text
    one = verdicts.shard_lesson(fake(b=1, acc=0.6))
    assert not one.holds and "cannot train" in one.text and "2·1 = 2 values" in one.text and "60.0 %" in one.text


def test_spread_verdict_both_ways():
    ok = verdicts.spread_verdict(fake(), 1)
    assert ok.holds and "every rank normalized with the same numbers" in ok.text
    assert f"**{_gap(fake(), 'per_replica'):.3g}**" in ok.text  # the gap, recomputed from the series
    broken = verdicts.spread_verdict(fake(sync_gap=1e-3), 1)
    assert not broken.holds and "did NOT normalize" in broken.text
    alone = verdicts.spread_verdict(fake(b=1), 2)
    assert alone.holds and "layer 2" in alone.text and "per-replica" not in alone.text


def test_spread_verdict_when_the_shards_agree():
    r = fake()
    quiet = r.spread.assign(max_gap=np.where(r.spread["variant"] == "per_replica", 0.0, r.spread["max_gap"]))
    same = verdicts.spread_verdict(dataclasses.replace(r, spread=quiet), 1)
    assert not same.holds and "same statistics" in same.text


def test_equivalence_verdict_both_ways():
    ok = verdicts.equivalence_verdict(fake(eq_sync=4e-16))
    assert ok.holds and "4e-16" in ok.text and "round-off" in ok.text
    off = verdicts.equivalence_verdict(fake(eq_sync=2e-3))
    assert not off.holds and "do NOT match" in off.text and "0.002" in off.text


def test_volume_verdict_both_ways():
    small = verdicts.volume_verdict(fake(bn_bytes=4096))
    assert small.holds and "4,096 bytes" in small.text and "11.1 % more data" in small.text
    big = verdicts.volume_verdict(fake(bn_bytes=50000))
    assert not big.holds and "outweigh" in big.text


def test_time_verdict_prints_a_ratio_that_is_the_quotient_of_the_printed_times():
    slow = verdicts.time_verdict(fake(sync_ms=8.444, per_ms=2.746))
    factor, a, b = re.search(r"\*\*([0-9.]+)×\*\* .*\(([0-9.]+) vs ([0-9.]+) ms", slow.text).groups()
    assert (a, b) == ("8.44", "2.75") and factor == f"{8.44 / 2.75:.2f}" == "3.07"  # not 8.444/2.746 = 3.08
    assert slow.holds
    same = verdicts.time_verdict(fake(sync_ms=2.02, per_ms=2.0))
    assert not same.holds and "1.01×" in same.text and "no measurable cost" in same.text
    none = verdicts.time_verdict(fake(b=1))
    assert not none.holds and "pick b ≥ 2" in none.text


def test_sweep_verdict_both_ways():
    degraded = verdicts.sweep_verdict(fake_sweep(per_small=0.6))
    assert degraded.holds and "**60.0 %**" in degraded.text and "BN lost 31.0 points" in degraded.text
    assert "sync BN lost 2.0 points" in degraded.text
    flat = verdicts.sweep_verdict(fake_sweep(per_small=0.89))
    assert not flat.holds and "no clear degradation" in flat.text


def test_sweep_points_add_up_as_printed():
    text = verdicts.sweep_verdict(fake_sweep(per_small=0.6049, sync_small=0.93)).text  # 60.5 % at 2, 91.0 % at 16
    assert "**60.5 %**" in text and "BN lost 30.5 points" in text and "sync BN gained 1.0 points" in text


def test_takeaway_both_ways():
    assert verdicts.conclusion(fake()).holds
    assert not verdicts.conclusion(fake(sync_gap=1e-3)).holds
    assert "does not show the textbook picture" in verdicts.conclusion(fake(eq_sync=1e-2)).text
    trains = verdicts.conclusion(fake(b=1, acc=0.8))
    assert trains.holds and "80.0 %" in trains.text
    slow = verdicts.conclusion(fake(b=1, acc=0.3))
    assert not slow.holds and "only 30.0 %" in slow.text and "0.00625" in slow.text  # 0.1 × 2 / 32


def test_sweep_estimate_from_the_measured_step_times():
    cfg = ReplicaSweepConfig(sizes=(2, 16), epochs=1.0)  # ⌈1347/4⌉ + ⌈1347/32⌉ = 337 + 43 = 380 steps
    slow = verdicts.sweep_estimate(cfg, fake(sync_ms=8.0, per_ms=2.0))  # + GN 1.0 ms: 11 ms per lockstep step
    assert slow.holds and "380 steps" in slow.text and "at most about 4.2 s" in slow.text
    assert "2 runs train at once" in slow.text  # 2 sizes × 1 seed: both runs in flight, one lane each
    quick = verdicts.sweep_estimate(cfg, fake(sync_ms=2.0, per_ms=1.0))
    assert not quick.holds and "about 1.5 s" in quick.text  # 380 × 4 ms = 1.52 s
    assert "about" not in verdicts.sweep_estimate(cfg, None).text  # nothing measured yet: no number
    one_run = ReplicaSweepConfig(sizes=(16,), epochs=1.0)
    assert "at once" not in verdicts.sweep_estimate(one_run, fake(sync_ms=8.0, per_ms=2.0)).text


def test_a_sweep_over_a_minute_is_refused_with_the_way_out():
    cfg = ReplicaSweepConfig(sizes=(2, 16), epochs=1.0)  # 380 lockstep steps
    assert verdicts.sweep_refusal(cfg, fake(sync_ms=8.0, per_ms=2.0)) is None  # about 4.2 s: runs
    assert verdicts.sweep_refusal(cfg, None) is None  # nothing measured: no grounds to refuse
    refusal = verdicts.sweep_refusal(cfg, fake(sync_ms=150.0, per_ms=50.0))  # 380 × 201 ms ≈ 76 s
    assert refusal is not None and not refusal.holds
    assert "about 76 s" in refusal.text and "Lower the seeds" in refusal.text


# ---------------------------------------------------------------------------
# Questions: answers equal the numbers recomputed from the result, for two seeds
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("seed", [0, 1])
def test_questions_answer_with_the_live_numbers(seed):
    r = fake(seed, sync_ms=5.0 + seed, per_ms=2.0)
    qs = {q.key: q for q in questions(r, 1)}
    assert list(qs) == ["gap", "count", "why", "ratio", "batch_of_one"]
    assert qs["gap"].answer == pytest.approx(_gap(r, "per_replica"), rel=1e-12)
    assert qs["gap"].check(float(f"{_gap(r, 'per_replica'):.3g}"))  # the number as the page prints it
    assert not qs["gap"].check(_gap(r, "per_replica") * 1.1)
    assert qs["count"].answer == 8 and not qs["count"].check(7)
    assert qs["ratio"].answer == pytest.approx((5.0 + seed) / 2.0)
    for key in ("why", "batch_of_one"):
        assert qs[key].answer in qs[key].options
    assert qs["why"].explain.count(f"{_gap(r, 'per_replica'):.3g}") == 1


def test_answers_change_with_the_seed():
    a, b = ({q.key: q.answer for q in questions(fake(seed))} for seed in (0, 1))
    assert a["gap"] != b["gap"]


@pytest.mark.parametrize("seed", [0, 1])
def test_batch_of_one_asks_only_what_the_run_has(seed):
    r = fake(seed, b=1, acc=0.55)
    qs = questions(r, 2)
    assert [q.key for q in qs] == ["count", "why", "batch_of_one"]
    assert qs[0].answer == 2 and "55.0 %" in qs[2].explain
