"""Synchronized BN and the launcher: real worker processes over gloo, torch as the oracle in float64.

The spawning tests share launches through module-scoped fixtures (each launch pays ~2–5 s
of worker start-up on a 2-core machine).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from bn_core.distributed import (
    DistConfig,
    DistResult,
    DistributedRunError,
    build_variant_model,
    global_batches,
    launch,
    pick_backend,
    replica_model_config,
    replica_schedule,
    sgd_momentum_step,
)
from bn_core.distributed import launcher as launcher_mod
from bn_core.distributed import worker as worker_mod
from bn_core.experiments.multi_device import ReplicaSweepConfig, bn_allreduce_bytes, run_replica_sweep
from bn_core.layers import ManualBatchNorm
from bn_core.models import build_model
from bn_core.sync_bn import SyncManualBatchNorm, sync_batch_norm_backward, sync_batch_norm_forward

ROOT = Path(__file__).resolve().parents[1]

# ---------------------------------------------------------------------------
# In one process: the math, the layer, the pieces of the worker
# ---------------------------------------------------------------------------


def test_local_sync_forward_backward_match_torch_in_float64(gen):
    x = (4.0 + 2.0 * torch.randn(6, 3, 2, 2, generator=gen, dtype=torch.float64)).requires_grad_()
    gamma = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_()
    beta = torch.randn(3, generator=gen, dtype=torch.float64).requires_grad_()
    dy = torch.randn(6, 3, 2, 2, generator=gen, dtype=torch.float64)
    y_ref = F.batch_norm(x, None, None, gamma, beta, training=True, eps=1e-5)
    grads_ref = torch.autograd.grad(y_ref, (x, gamma, beta), dy)
    y, cache, M = sync_batch_norm_forward(x.detach(), gamma.detach(), beta.detach(), 1e-5, group=None)
    assert M == 6 * 2 * 2
    torch.testing.assert_close(y, y_ref.detach(), rtol=0, atol=1e-12)
    for mine, ref in zip(sync_batch_norm_backward(dy, cache, M), grads_ref, strict=True):
        torch.testing.assert_close(mine, ref, rtol=0, atol=1e-12)


def test_float64_sums_keep_the_variance_accurate_for_float32_inputs_far_from_zero(gen):
    """E[x²] − E[x]² cancels when |mu| ≫ sigma; the float64 sums keep it accurate in float32 training."""
    x = 1000.0 + torch.randn(256, 4, generator=gen, dtype=torch.float64)
    _, cache, _ = sync_batch_norm_forward(x.float(), torch.ones(4), torch.zeros(4), group=None)
    exact = x.float().double().var(dim=0, unbiased=False)
    torch.testing.assert_close(cache.var.double(), exact, rtol=1e-5, atol=0)
    naive = (x.float() ** 2).mean(0) - x.float().mean(0) ** 2  # the same formula in float32
    assert (naive.double() - exact).abs().max() > 1e-2, "float32 sums should visibly cancel here"


def test_layer_without_a_process_group_is_manual_batch_norm(gen):
    x = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    dy = torch.randn(16, 5, generator=gen, dtype=torch.float64)
    ours, ref = SyncManualBatchNorm(5).double(), ManualBatchNorm(5).double()
    xs = [x.clone().requires_grad_() for _ in range(2)]
    for layer, xi in zip((ours, ref), xs, strict=True):
        layer(xi).backward(dy)
    torch.testing.assert_close(xs[0].grad, xs[1].grad, rtol=0, atol=1e-12)
    torch.testing.assert_close(ours.weight.grad, ref.weight.grad, rtol=0, atol=1e-12)
    for name in ("running_mean", "running_var", "num_batches_tracked"):
        torch.testing.assert_close(getattr(ours, name), getattr(ref, name), rtol=0, atol=1e-12)
    assert ours.last_mu_B is not None and ours.last_mu_B.shape == (5,)
    ours.eval()
    torch.testing.assert_close(ours(x), ref.eval()(x), rtol=0, atol=1e-12)


def test_state_dict_loads_into_torch_batch_norm_both_ways():
    ours, torch_bn = SyncManualBatchNorm(4), nn.BatchNorm2d(4)
    ours.running_mean.fill_(0.5)
    torch_bn.load_state_dict(ours.state_dict())
    assert torch_bn.running_mean[0] == 0.5
    ours.load_state_dict(nn.BatchNorm1d(4).state_dict())
    assert list(ours.state_dict()) == list(nn.BatchNorm1d(4).state_dict())


def test_batch_of_one_without_sync_gets_the_batch_norm_message():
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        SyncManualBatchNorm(3)(torch.randn(1, 3))


def test_hand_written_sgd_is_torch_sgd_with_momentum(gen):
    a, b = nn.Linear(4, 3), nn.Linear(4, 3)
    b.load_state_dict(a.state_dict())
    velocity = [torch.zeros_like(p) for p in a.parameters()]
    opt = torch.optim.SGD(b.parameters(), lr=0.05, momentum=0.9)
    for _ in range(5):
        x = torch.randn(8, 4, generator=gen)
        for model in (a, b):
            model.zero_grad()
            model(x).pow(2).sum().backward()
        sgd_momentum_step(list(a.parameters()), velocity, 0.05, 0.9)
        opt.step()
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=1e-7)


def test_global_batches_give_disjoint_shards_and_full_epochs():
    batches = global_batches(20, 8, 5, seed=3)
    assert batches.shape == (5, 8)
    first_epoch = batches[:2].flatten()  # 20 // 8 = 2 batches per epoch
    assert len(set(first_epoch.tolist())) == 16
    shards = batches[:, :4], batches[:, 4:]  # rank 0 and rank 1 with b = 4
    assert not set(shards[0][0].tolist()) & set(shards[1][0].tolist())
    assert torch.equal(batches, global_batches(20, 8, 5, seed=3))
    with pytest.raises(ValueError, match="does not fit"):
        global_batches(20, 21, 1, seed=0)


def test_linear_scaling_rule_and_epoch_budget():
    cfg = DistConfig(world_size=2, epochs=2.0, lr=0.1)
    assert replica_schedule(cfg, 2, 1347) == (math.ceil(2 * 1347 / 4), pytest.approx(0.1 * 4 / 32))
    assert replica_schedule(DistConfig(world_size=4, steps=7), 8, 1347) == (7, pytest.approx(0.1))


def test_variants_share_initial_weights():
    cfg = replica_model_config(DistConfig())
    models = [build_variant_model(v, cfg, seed=5) for v in ("per_replica", "sync", "group")]
    for block in range(cfg.depth):
        weights = [m.blocks[block].linear.weight for m in models]
        assert all(torch.equal(weights[0], w) for w in weights[1:])


@pytest.mark.parametrize(
    ("overrides", "phrase"),
    [
        ({"world_size": 1}, "world size must be 2"),
        ({"world_size": 5}, "world size must be 2"),
        ({"images_per_replica": (1,)}, "needs ≥ 2 images per replica"),
        ({"images_per_replica": (400,), "world_size": 4}, "training examples"),
        ({"variants": ("batch",)}, "unknown variants"),
        ({"lr": float("nan")}, "lr a positive number"),
        ({"stats_channel": 64}, "stats_channel"),
        ({"lanes": 0}, "lanes must be 1"),
        ({"lanes": 5}, "lanes must be 1"),
    ],
)
def test_invalid_configs_are_refused_before_anything_starts(overrides, phrase):
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ValueError, match=phrase):
        launch(DistConfig(**overrides))
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= before


def test_backend_is_gloo_on_the_cpu_and_nccl_needs_gpus():
    assert pick_backend("auto", 2) == "gloo"
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="one GPU per rank"):
            pick_backend("nccl", 2)


def test_children_do_not_rerun_the_parents_main():
    original = launcher_mod.mp_spawn.get_preparation_data
    with launcher_mod._without_parent_main():
        data = launcher_mod.mp_spawn.get_preparation_data("w")
    assert "init_main_from_path" not in data and "init_main_from_name" not in data
    assert "sys_path" in data  # the children still find bn_core
    assert launcher_mod.mp_spawn.get_preparation_data is original


# ---------------------------------------------------------------------------
# Real processes: 4 ranks × 8 examples over gloo
# ---------------------------------------------------------------------------

W4 = DistConfig(
    world_size=4,
    images_per_replica=(8,),
    steps=12,
    eval_every=6,
    equivalence_per_rank=8,
    timeout_s=240,
)


@pytest.fixture(scope="module")
def four_ranks() -> DistResult:
    return launch(W4)


def test_sync_bn_over_4_ranks_equals_one_process_over_32(four_ranks):
    eq = four_ranks.equivalence.set_index(["variant", "quantity"])["max_abs_diff"]
    for quantity in ("y", "dx", "dgamma", "dbeta", "running_mean", "running_var"):
        assert eq[("sync", quantity)] < 1e-6, quantity


def test_per_replica_bn_on_the_same_data_differs(four_ranks):
    eq = four_ranks.equivalence.set_index(["variant", "quantity"])["max_abs_diff"]
    for quantity in ("y", "dx", "dgamma", "running_mean", "running_var"):
        assert eq[("per_replica", quantity)] > 1e-2, quantity
    assert eq[("per_replica", "dbeta")] < 1e-12  # Σ dy does not depend on the statistics


def test_synchronized_statistics_coincide_and_per_replica_ones_scatter(four_ranks):
    stats = four_ranks.stats
    gaps = stats.groupby(["variant", "step", "layer", "metric"])["value"].agg(lambda v: v.max() - v.min())
    assert (gaps.loc["sync"] == 0).all()  # bitwise identical on every rank
    assert (gaps.loc["per_replica"] > 0).all()
    assert set(stats["rank"]) == {0, 1, 2, 3} and stats["step"].max() == W4.steps


def test_sync_and_group_ranks_stay_identical(four_ranks):
    acc = four_ranks.accuracy.set_index(["variant", "rank"])["value"]
    for variant in ("sync", "group"):
        assert acc[variant].nunique() == 1, variant


def test_data_parallel_sync_bn_trains_like_one_process_on_the_global_batch(four_ranks):
    """4 ranks × 8 with synchronized BN ≡ one process, batch 32, ManualBatchNorm, torch.optim.SGD."""
    model = build_model(replica_model_config(W4), seed=W4.seeds[0])
    steps, lr = replica_schedule(W4, 8, 1347)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=W4.momentum)
    data = launcher_mod._load_digits(W4.data_seed)
    reference = []
    for idx in global_batches(1347, 32, steps, W4.seeds[0]):
        opt.zero_grad()
        loss = F.cross_entropy(model(data["x_train"][idx]), data["y_train"][idx])
        loss.backward()
        opt.step()
        reference.append(loss.item())
    curves = four_ranks.curves
    sync = curves[(curves["variant"] == "sync") & (curves["metric"] == "loss")]
    mean_loss = sync.groupby("step")["value"].mean().to_numpy()  # equal shards: mean of rank losses
    np.testing.assert_allclose(mean_loss, reference, rtol=0, atol=1e-4)
    per = curves[(curves["variant"] == "per_replica") & (curves["metric"] == "loss")]
    assert np.abs(per.groupby("step")["value"].mean().to_numpy() - reference)[1:].max() > 1e-3


def test_all_reduce_volume_is_what_the_formula_says(four_ranks):
    comm = four_ranks.comm[four_ranks.comm["rank"] == 0].set_index(["variant", "kind"])
    assert comm.loc[("sync", "bn_stats"), "bytes_per_step"] == bn_allreduce_bytes(W4) == 2 * 64 * 32
    assert comm.loc[("sync", "bn_stats"), "calls_per_step"] == 4  # forward + backward, 2 layers
    assert comm.loc[("per_replica", "bn_stats"), "calls_per_step"] == 0
    params = comm.loc[("sync", "gradients"), "params"]
    assert comm.loc[("sync", "gradients"), "bytes_per_step"] == params * 4
    timing = four_ranks.timing
    assert (timing[timing["metric"] == "step_ms"]["value"] > 0).all()
    bn_ms = timing[(timing["metric"] == "bn_allreduce_ms")].set_index(["variant", "rank"])["value"]
    assert (bn_ms.loc["sync"] > 0).all() and (bn_ms.loc["per_replica"] == 0).all()


def test_launch_reports_how_it_ran_and_leaves_no_worker(four_ranks):
    assert four_ranks.backend == "gloo" and four_ranks.device == "cpu"
    assert "GPU" in four_ranks.torch_sync_note  # nn.SyncBatchNorm refuses CPU tensors
    assert 0 < four_ranks.startup_s < four_ranks.wall_s
    assert len(four_ranks.pids) == 4
    assert not [pid for pid in four_ranks.pids if _alive(pid)]


def test_same_seed_gives_bitwise_identical_results_forked_or_spawned():
    cfg = DistConfig(world_size=2, images_per_replica=(3,), steps=6, eval_every=3, variants=("per_replica", "sync"))
    first, second = launch(cfg), launch(dataclasses.replace(cfg, start_method="spawn"))
    for name in ("stats", "curves", "accuracy"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name), check_exact=True)


def test_runs_trained_in_lanes_are_bitwise_the_runs_trained_one_by_one():
    cfg = DistConfig(world_size=2, images_per_replica=(2, 4, 8), seeds=(0, 1), steps=8, eval_every=4)
    one_by_one, in_lanes = launch(cfg), launch(dataclasses.replace(cfg, lanes=3))
    for name in ("stats", "curves", "accuracy"):
        key = [c for c in getattr(one_by_one, name).columns if c != "value"]
        a, b = (getattr(r, name).sort_values(key).reset_index(drop=True) for r in (one_by_one, in_lanes))
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, b, check_exact=True)
    assert len(one_by_one.timing) > 0 and in_lanes.timing.empty and in_lanes.comm.empty  # lanes are untimed


def test_lane_plan_gives_every_job_once_longest_first_to_the_least_loaded_lane():
    cfg = DistConfig(world_size=2, epochs=1.0)
    jobs = [(b, s) for b in (2, 4, 8, 16) for s in (0, 1)]
    job_steps = [replica_schedule(cfg, b, 1347)[0] for b, _ in jobs]
    plan = worker_mod.lane_plan(job_steps, 3)
    assert sorted(k for lane in plan for k in lane) == list(range(len(jobs)))
    steps = [sum(job_steps[k] for k in lane) for lane in plan]
    assert [plan[0][0], plan[1][0]] == [0, 1]  # the two 337-step runs (2 images per replica) start first, apart
    assert steps == [337 + 85, 337 + 85, 169 + 169 + 43 + 43]  # within the shortest run (43 steps) of each other
    assert plan == worker_mod.lane_plan(job_steps, 3)  # every rank makes the same plan


def test_a_failing_lane_raises_in_the_ranks_main_thread(monkeypatch):
    """In one process (a 1-rank gloo group): results come back in job order, and a lane's error is raised."""
    cfg = DistConfig(world_size=2, images_per_replica=(2, 4, 8), epochs=1.0)  # 25, 13 and 7 steps of 100 examples
    spec = worker_mod.Spec(cfg, 0, "gloo", {"y_train": torch.zeros(100)}, torch.zeros(1), os.getpid(), 0.0)
    jobs = [(2, 0), (4, 0), (8, 0)]

    progress: list[float] = []

    class Out:
        def put(self, message):
            progress.append(message[2][0])

    def fake_run(rank, spec, models, b, seed, device, report, group):
        if b == 8 and fail:
            raise RuntimeError("lane broke")
        return {"images": b}

    monkeypatch.setattr(worker_mod, "_train_run", fake_run)
    dist = torch.distributed
    dist.init_process_group("gloo", store=dist.HashStore(), rank=0, world_size=1)
    try:
        fail = False
        runs = worker_mod._train_in_lanes(0, spec, torch.device("cpu"), Out(), jobs, {}, 2)
        assert [r["images"] for r in runs] == [2, 4, 8]
        assert sorted(progress) == progress and progress[-1] == 1.0  # the share of steps done
        assert set(progress) <= {25 / 45, 13 / 45, 7 / 45, 38 / 45, 32 / 45, 20 / 45, 1.0}
        fail = True
        with pytest.raises(RuntimeError, match="lane broke"):
            worker_mod._train_in_lanes(0, spec, torch.device("cpu"), Out(), jobs, {}, 2)
    finally:
        dist.destroy_process_group()


# ---------------------------------------------------------------------------
# Failures: every worker is stopped, the error is reported
# ---------------------------------------------------------------------------


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _workers(root: psutil.Process) -> set[int]:
    """The worker processes under ``root``: its descendants less the fork server and the resource tracker."""
    found = set()
    for child in root.children(recursive=True):
        with contextlib.suppress(psutil.Error):
            line = " ".join(child.cmdline())
            helper = "resource_tracker" in line or ("forkserver" in line and child.ppid() == root.pid)
            if not helper:
                found.add(child.pid)
    return found


def _launch_failing(fault: str, timeout_s: float, start_method: str) -> tuple[DistributedRunError, set[int]]:
    seen: set[int] = set()
    before = {c.pid for c in psutil.Process().children(recursive=True)}  # e.g. the browser tests' Chromium

    def progress(fraction: float, message: str) -> None:  # called in this process while the workers run
        seen.update(_workers(psutil.Process()) - before)

    cfg = DistConfig(world_size=2, steps=5, fault=fault, fault_rank=1, timeout_s=timeout_s, start_method=start_method)
    with pytest.raises(DistributedRunError) as info:
        launch(cfg, progress)
    return info.value, seen


@pytest.mark.parametrize(
    ("fault", "timeout_s", "phrase", "start_method"),
    [
        ("raise", 120, "Rank 1 failed: RuntimeError: injected fault", "forkserver"),
        ("exit", 120, "rank 1 exited with code 3", "forkserver"),
        ("exit", 120, "rank 1 exited with code 3", "spawn"),
        ("hang", 8, "timed out after 8 s", "forkserver"),
    ],
)
def test_launcher_stops_every_worker_when_one_fails(fault, timeout_s, phrase, start_method):
    err, seen = _launch_failing(fault, timeout_s, start_method)
    assert phrase in str(err)
    assert len(err.pids) == 2 and seen and seen <= set(err.pids)
    assert not [pid for pid in err.pids if _alive(pid)], "a worker survived the failure"
    if fault == "raise":
        assert "_inject_fault" in err.detail  # the worker's traceback is kept for the logs


def test_workers_and_the_fork_server_exit_when_the_launcher_is_killed():
    """kill -9 of the launching process (a crashed server): no worker and no fork server is left behind."""
    code = "from bn_core.distributed import DistConfig, launch; launch(DistConfig(steps=10**6, record_stats=False))"
    launcher = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT)
    root, deadline, workers = psutil.Process(launcher.pid), time.monotonic() + 120, set()
    while len(workers) < 2 and time.monotonic() < deadline:
        workers = _workers(root)
        time.sleep(0.2)
    helpers = {p.pid for p in root.children(recursive=True)} - workers
    assert len(workers) == 2, "the workers never started"
    launcher.kill()
    launcher.wait()
    deadline = time.monotonic() + 10
    while [pid for pid in workers | helpers if _alive(pid)] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in workers | helpers if _alive(pid)], "a worker or the fork server outlived the launcher"


# ---------------------------------------------------------------------------
# CUDA only: the hand-written synchronized BN against nn.SyncBatchNorm over NCCL
# ---------------------------------------------------------------------------


@pytest.mark.skipif(
    not torch.cuda.is_available() or torch.cuda.device_count() < 2 or os.environ.get("BN_DEVICE") == "cpu",
    reason="needs CUDA with 2 GPUs (NCCL, one GPU per rank)",
)
def test_hand_written_sync_bn_matches_nn_sync_batch_norm_on_cuda():
    r = launch(DistConfig(world_size=2, images_per_replica=(4,), steps=5, equivalence_per_rank=8, backend="nccl"))
    eq = r.equivalence.set_index(["variant", "quantity"])["max_abs_diff"]
    for quantity in ("y", "dx", "dgamma", "dbeta", "running_mean", "running_var"):
        assert eq[("sync_torch", quantity)] < 1e-6 and eq[("sync", quantity)] < 1e-6, quantity
    assert r.backend == "nccl" and "sync_torch" in set(r.stats["variant"])


# ---------------------------------------------------------------------------
# The scientific claim, on real processes
# ---------------------------------------------------------------------------


@pytest.mark.slow
def test_per_replica_bn_degrades_at_2_images_per_replica_sync_bn_and_group_norm_do_not():
    r = run_replica_sweep(ReplicaSweepConfig(world_size=2, sizes=(2, 16), n_seeds=3, epochs=1.0))
    acc = r.accuracy.groupby(["images_per_replica", "variant"])["value"].mean()
    assert isinstance(acc, pd.Series)
    assert acc[(2, "per_replica")] < acc[(2, "sync")] - 0.15
    assert acc[(2, "per_replica")] < acc[(2, "group")] - 0.15
    assert acc[(2, "per_replica")] < acc[(16, "per_replica")] - 0.15  # it degrades …
    assert acc[(2, "sync")] > acc[(16, "sync")] - 0.08  # … the others do not
    assert acc[(2, "group")] > acc[(16, "group")] - 0.08
