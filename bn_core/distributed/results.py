"""Results → long-format DataFrames, in the launcher's process only (workers never import pandas)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from bn_core.distributed.config import EQ_CHANNELS, DistConfig, equivalence_inputs
from bn_core.layers import ManualBatchNorm

if TYPE_CHECKING:  # pandas only for the annotations: the workers import this package and never need it
    import pandas as pd


@dataclass(frozen=True, eq=False)
class DistResult:
    """What a launch returns: long-format DataFrames, plus how it ran. ``rank`` columns are 0 … W−1."""

    config: DistConfig
    curves: pd.DataFrame  # images_per_replica, seed, variant, rank, step, metric (loss | test_acc), value
    stats: pd.DataFrame  # images_per_replica, seed, variant, rank, step, layer, metric (mu_B | var_B), value
    accuracy: pd.DataFrame  # images_per_replica, seed, variant, rank, value (final test accuracy)
    timing: pd.DataFrame  # images_per_replica, seed, variant, rank, metric, value: median ms per step of
    #   step_ms (the whole update), compute_ms, bn_allreduce_ms, grad_allreduce_ms (empty with lanes > 1)
    comm: pd.DataFrame  # images_per_replica, seed, variant, kind, calls_per_step, bytes_per_step, … (ditto)
    equivalence: pd.DataFrame | None  # variant, quantity, max_abs_diff (vs one process over W·b)
    backend: str  # gloo or nccl
    device: str  # rank 0's device
    torch_sync_note: str | None  # what nn.SyncBatchNorm said on this device (CPU: its refusal)
    startup_s: float  # launch → every rank has joined the process group
    wall_s: float  # the whole launch
    pids: tuple[int, ...]  # the worker processes (all stopped by the time you read this)


def _run_rows(rank: int, run: dict, cfg: DistConfig) -> dict[str, list]:
    """Long rows of one rank's run: curves, stats, accuracy, timing, communication."""
    rows: dict[str, list] = {k: [] for k in ("curves", "stats", "accuracy", "timing", "comm")}
    key = (run["images"], run["seed"])
    for variant, rec in run["variants"].items():
        steps = len(rec["loss"])
        warm = max(1, steps // 10)  # the first steps pay one-off allocations: left out of the medians
        rows["curves"] += [(*key, variant, rank, t + 1, "loss", float(v)) for t, v in enumerate(rec["loss"])]
        rows["curves"] += [(*key, variant, rank, t, "test_acc", a) for t, a in rec["acc"]]
        rows["accuracy"].append((*key, variant, rank, rec["acc"][-1][1]))
        if rec["stats"] is not None:
            for (t, layer, s), v in np.ndenumerate(rec["stats"]):
                rows["stats"].append((*key, variant, rank, t + 1, layer + 1, ("mu_B", "var_B")[s], float(v)))
        if not len(rec["step_s"]):  # trained in a lane (DistConfig.lanes > 1): untimed
            continue
        parts = {"step": rec["step_s"], "bn_allreduce": rec["bn_s"], "grad_allreduce": rec["grad_s"]}
        parts["compute"] = rec["step_s"] - rec["bn_s"] - rec["grad_s"]
        for name, seconds in parts.items():
            kept = seconds[warm:] if len(seconds) > warm else seconds
            rows["timing"].append((*key, variant, rank, f"{name}_ms", float(np.median(kept)) * 1e3))
        for kind, (calls, nbytes, secs) in (("bn_stats", rec["bn_comm"]), ("gradients", rec["grad_comm"])):
            per_step = (calls / steps, nbytes / steps, secs * 1e3 / steps)
            rows["comm"].append((*key, variant, rank, kind, *per_step, rec["bn_layers"], rec["params"]))
    return rows


def _equivalence_frame(cfg: DistConfig, results: dict[int, dict]) -> pd.DataFrame:
    """Every rank's shard put back together vs one process over the whole global batch (float64)."""
    import pandas as pd

    ranks = [results[r]["equivalence"] for r in sorted(results)]
    inputs = equivalence_inputs(cfg.world_size, cfg.equivalence_per_rank, cfg.seeds[0])
    reference = ManualBatchNorm(EQ_CHANNELS).double()
    with torch.no_grad():
        reference.weight.copy_(inputs["gamma"])
        reference.bias.copy_(inputs["beta"])
    x = inputs["x"].clone().requires_grad_()
    y = reference(x)
    (y * inputs["dy"]).sum().backward()  # gradient dy, as in the workers
    want = {"y": y, "dx": x.grad, "dgamma": reference.weight.grad, "dbeta": reference.bias.grad}
    want |= {"running_mean": reference.running_mean, "running_var": reference.running_var}
    rows = []
    for variant in ranks[0]:
        got = {k: np.concatenate([r[variant][k] for r in ranks]) for k in ("y", "dx")}
        got |= {k: np.sum([r[variant][k] for r in ranks], axis=0) for k in ("dgamma", "dbeta")}  # DP sums them
        for k in ("running_mean", "running_var"):  # every rank's buffer, the worst one
            got[k] = max((r[variant][k] for r in ranks), key=lambda v, k=k: np.abs(v - want[k].numpy()).max())
        rows += [(variant, k, float(np.abs(got[k] - want[k].detach().numpy()).max())) for k in want]
    return pd.DataFrame(rows, columns=["variant", "quantity", "max_abs_diff"])


def build_result(
    cfg: DistConfig, backend: str, results: dict[int, dict], startup_s: float, wall_s: float, pids
) -> DistResult:
    import pandas as pd  # here, not at the top: spawned workers import this module and never need pandas

    key = ["images_per_replica", "seed", "variant", "rank"]
    columns = {
        "curves": [*key, "step", "metric", "value"],
        "stats": [*key, "step", "layer", "metric", "value"],
        "accuracy": [*key, "value"],
        "timing": [*key, "metric", "value"],
        "comm": [*key, "kind", "calls_per_step", "bytes_per_step", "ms_per_step", "bn_layers", "params"],
    }
    rows: dict[str, list] = {k: [] for k in columns}
    for rank in sorted(results):
        for run in results[rank]["runs"]:
            for name, part in _run_rows(rank, run, cfg).items():
                rows[name] += part
    frames = {name: pd.DataFrame(rows[name], columns=cols) for name, cols in columns.items()}
    return DistResult(
        config=cfg,
        **frames,
        equivalence=_equivalence_frame(cfg, results) if cfg.equivalence_per_rank else None,
        backend=backend,
        device=results[0]["device"],
        torch_sync_note=results[0]["torch_sync_note"],
        startup_s=startup_s,
        wall_s=wall_s,
        pids=pids,
    )
