"""The worker: one rank of the data-parallel group, run in its own process (forked from the fork server).

It joins the gloo (or NCCL) group, trains every variant in lockstep on its shard of each
global batch, averages gradients with one all-reduce per step and sends its records back
to the launcher through a queue. It imports neither pandas nor scikit-learn.

Sources: Goyal et al. 2017, arXiv:1706.02677 (data-parallel SGD); Ioffe & Szegedy 2015,
arXiv:1502.03167.
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import os
import pickle
import queue
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from bn_core.distributed.config import (
    EQ_CHANNELS,
    DistConfig,
    equivalence_inputs,
    global_batches,
    replica_schedule,
)
from bn_core.functional import values_per_channel
from bn_core.optim import heavy_ball_step
from bn_core.sync_bn import CommMeter, SyncManualBatchNorm


@dataclass(frozen=True)
class Spec:
    """Everything a worker needs, pickled once into the spawned process."""

    cfg: DistConfig
    port: int
    backend: str
    data: dict[str, Tensor]  # x_train, y_train, x_test, y_test in shared memory (workers skip sklearn)
    models: Tensor  # uint8, shared memory: the pickled {(seed, variant): initial model}, built once by the parent
    parent_pid: int  # the launcher's process
    t0: float  # the parent's time.time() at launch, for the start-up time


def _launcher_gone(launcher_pid: int, first_parent: int) -> bool:
    """The launcher has exited, or this process was re-parented (its forkserver or spawning parent died)."""
    if os.getppid() != first_parent:
        return True
    try:
        os.kill(launcher_pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # exists, owned by someone else (cannot happen for our launcher, but harmless)
        return False
    return False


def _watch_parent(launcher_pid: int) -> None:
    """Exit if the launcher dies (e.g. the server was killed): a worker never outlives it.

    Under "spawn" the parent is the launcher; under "forkserver" it is the fork server, which
    exits when the launcher does. Either way the launcher's pid and the first parent are watched.
    """
    first_parent = os.getppid()

    def watch() -> None:
        while not _launcher_gone(launcher_pid, first_parent):
            time.sleep(0.5)
        os._exit(2)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _inject_fault(rank: int, cfg: DistConfig) -> None:
    if cfg.fault == "none" or rank != cfg.fault_rank:
        return
    if cfg.fault == "raise":
        raise RuntimeError(f"injected fault on rank {rank} (DistConfig.fault='raise')")
    if cfg.fault == "exit":
        os._exit(3)  # a hard crash: no message, no clean-up, like a segfault or an OOM kill
    time.sleep(10 * cfg.timeout_s)  # "hang": only the launcher's timeout can end this


def worker_main(rank: int, spec: Spec, out: Any) -> None:
    """Process entry point: join the group, run the work, report the result or the error."""
    torch.set_num_threads(1)  # one core per rank; more threads only fight over the cores
    _watch_parent(spec.parent_pid)
    try:
        device = _join_group(rank, spec)
        out.put(("ready", rank, time.time() - spec.t0))
        _inject_fault(rank, spec.cfg)
        out.put(("result", rank, _work(rank, spec, device, out)))
    except BaseException as err:  # noqa: BLE001 - every failure must reach the parent as a message
        out.put(("error", rank, (f"{type(err).__name__}: {err}", traceback.format_exc())))
        raise SystemExit(1) from None
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def _join_group(rank: int, spec: Spec) -> torch.device:
    cfg = spec.cfg
    device = torch.device("cpu")
    if spec.backend == "nccl":
        device = torch.device("cuda", rank)
        torch.cuda.set_device(device)
    dist.init_process_group(
        spec.backend,
        init_method=f"tcp://127.0.0.1:{spec.port}",
        rank=rank,
        world_size=cfg.world_size,
        timeout=datetime.timedelta(seconds=cfg.timeout_s + 30),  # the launcher's own timeout fires first
    )
    return device


def _torch_sync_note(device: torch.device) -> str | None:
    """What ``nn.SyncBatchNorm`` says about this device: on the CPU it refuses before any communication."""
    if device.type != "cpu":
        return None
    try:
        nn.SyncBatchNorm(2)(torch.ones(4, 2))
    except (ValueError, RuntimeError) as err:
        return f"{type(err).__name__}: {err}"
    return "nn.SyncBatchNorm ran on the CPU"


def _work(rank: int, spec: Spec, device: torch.device, out: Any) -> dict:
    cfg = spec.cfg
    result: dict[str, Any] = {"rank": rank, "device": str(device), "runs": []}
    result["torch_sync_note"] = _torch_sync_note(device) if rank == 0 else None
    if cfg.equivalence_per_rank:
        result["equivalence"] = _equivalence(rank, cfg.world_size, cfg.equivalence_per_rank, cfg.seeds[0], device)
    jobs = [(b, s) for b in cfg.images_per_replica for s in cfg.seeds]
    initial_models = pickle.loads(spec.models.numpy().tobytes())
    lanes = min(cfg.lanes, len(jobs)) if spec.backend == "gloo" else 1
    if lanes > 1:
        result["runs"] = _train_in_lanes(rank, spec, device, out, jobs, initial_models, lanes)
        return result
    for k, (b, seed) in enumerate(jobs):

        def report(fraction: float, b: int = b, k: int = k) -> None:
            if rank == 0:
                out.put(("progress", rank, ((k + fraction) / len(jobs), f"{b} images per replica")))

        result["runs"].append(_train_run(rank, spec, initial_models, b, seed, device, report))
    return result


def lane_plan(steps: list[int], lanes: int) -> list[list[int]]:
    """Which jobs each lane trains, given each job's step count: longest first, each to the lane
    with the fewest steps so far.

    A pure function of the config's step counts, so every rank makes the same plan: lane i of
    every rank trains the same runs in the same order, on the same process group.
    """
    plan: list[list[int]] = [[] for _ in range(lanes)]
    load = [0] * lanes
    for k in sorted(range(len(steps)), key=lambda k: (-steps[k], k)):
        lane = load.index(min(load))
        plan[lane].append(k)
        load[lane] += steps[k]
    return plan


def _train_in_lanes(
    rank: int, spec: Spec, device: torch.device, out: Any, jobs: list[tuple[int, int]], models: dict, lanes: int
) -> list[dict]:
    """Every job, ``lanes`` at a time: one thread per lane, each lane on its own process group.

    A rank spends most of a small net's step waiting for its peers (each all-reduce waits for
    the slowest rank to be scheduled); with several runs in flight one computes while another
    waits. Each run computes exactly what it computes alone: its own models, shards and group.
    """
    timeout = datetime.timedelta(seconds=spec.cfg.timeout_s + 30)  # as the WORLD group's: the launcher's fires first
    groups = [dist.new_group(backend=spec.backend, timeout=timeout) for _ in range(lanes)]  # same order on every rank
    steps = [replica_schedule(spec.cfg, b, len(spec.data["y_train"]))[0] for b, _ in jobs]
    plan = lane_plan(steps, lanes)
    finished: queue.Queue = queue.Queue()

    def lane(i: int) -> None:
        try:
            for k in plan[i]:
                b, seed = jobs[k]
                finished.put((k, _train_run(rank, spec, models, b, seed, device, lambda f: None, groups[i])))
        except BaseException as err:  # noqa: BLE001 - handed to the rank's main thread, which raises it
            finished.put((None, err))

    for i in range(lanes):
        threading.Thread(target=lane, args=(i,), daemon=True, name=f"lane-{i}").start()
    runs: dict[int, dict] = {}
    while len(runs) < len(jobs):
        k, value = finished.get()
        if k is None:
            raise value  # a stuck peer lane is a daemon thread: it ends with the process
        runs[k] = value
        if rank == 0:  # the share of all optimizer steps done: runs of 2 images take 8× the steps of runs of 16
            done = sum(steps[j] for j in runs) / sum(steps)
            out.put(("progress", rank, (done, f"{len(runs)} of {len(jobs)} runs trained")))
    return [runs[k] for k in range(len(jobs))]


def _numpy(t: Tensor | None) -> np.ndarray | None:
    return None if t is None else t.detach().cpu().numpy()


def _equivalence(rank: int, world_size: int, b: int, seed: int, device: torch.device) -> dict[str, dict]:
    """Forward + backward of this rank's shard through sync BN, per-replica BN (and nn.SyncBatchNorm on CUDA)."""
    inputs = {k: v.to(device) for k, v in equivalence_inputs(world_size, b, seed).items()}
    rows = slice(rank * b, (rank + 1) * b)
    layers = {"sync": SyncManualBatchNorm(EQ_CHANNELS), "per_replica": SyncManualBatchNorm(EQ_CHANNELS, sync=False)}
    if device.type == "cuda":
        layers["sync_torch"] = nn.SyncBatchNorm(EQ_CHANNELS)
    found = {}
    for name, layer in layers.items():
        layer = layer.to(device=device, dtype=torch.float64)
        with torch.no_grad():
            layer.weight.copy_(inputs["gamma"])
            layer.bias.copy_(inputs["beta"])
        x = inputs["x"][rows].clone().requires_grad_()
        y = layer(x)
        # Σ y·dy has gradient dy. Why not y.backward(dy): a non-scalar backward imports
        # torch.fx's symbolic shapes, 1.5–2.5 s of every fresh worker's start-up.
        (y * inputs["dy"][rows]).sum().backward()
        grads = {"y": y, "dx": x.grad, "dgamma": layer.weight.grad, "dbeta": layer.bias.grad}
        buffers = {"running_mean": layer.running_mean, "running_var": layer.running_var}
        found[name] = {k: _numpy(v) for k, v in {**grads, **buffers}.items()}
    return found


def _average_gradients(models: list[nn.Module], meter: CommMeter, world_size: int, group: Any) -> None:
    """Data parallelism: one all-reduce of every gradient, flattened, then ÷ world size (the mean loss)."""
    grads = [p.grad for model in models for p in model.parameters() if p.grad is not None]
    flat = meter.all_reduce(torch.cat([g.reshape(-1) for g in grads]), group)
    flat.div_(world_size)
    for g, synced in zip(grads, torch._utils._unflatten_dense_tensors(flat, grads), strict=True):
        g.copy_(synced)


def _bn_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, SyncManualBatchNorm | nn.SyncBatchNorm)]


def _record_torch_sync_stats(layer: nn.SyncBatchNorm, world_size: int) -> None:
    """nn.SyncBatchNorm keeps no batch statistics: recover them from its running-statistics update.

    ``new = (1 − m)·old + m·batch`` ⇒ ``batch = (new − (1 − m)·old)/m``; the running variance
    is unbiased with the global count ``M``, so ``var_B = var_unbiased·(M − 1)/M``.
    """
    momentum = float(layer.momentum)

    def before(module: nn.Module, args: tuple) -> None:
        module._old = (module.running_mean.clone(), module.running_var.clone())

    def after(module: nn.Module, args: tuple, _y: Tensor) -> None:
        if not module.training:
            return
        old_mean, old_var = module._old
        M = values_per_channel(args[0]) * world_size  # equal shards on every rank
        module.last_mu_B = (module.running_mean - (1 - momentum) * old_mean) / momentum
        var_unbiased = (module.running_var - (1 - momentum) * old_var) / momentum
        module.last_var_B = var_unbiased * (M - 1) / M

    layer.register_forward_pre_hook(before)
    layer.register_forward_hook(after)


@dataclass
class _Run:
    """One variant's model, its SGD momentum buffers and its records in one run."""

    model: nn.Module
    velocity: list[Tensor]  # SGD momentum buffers, one per parameter
    grad_meter: CommMeter = field(default_factory=CommMeter)
    loss: list[Tensor] = field(default_factory=list)
    stats: list[Tensor] = field(default_factory=list)  # per step: (layers, 2) of [mu_B, var_B]
    step_s: list[float] = field(default_factory=list)  # wall time of each update
    bn_s: list[float] = field(default_factory=list)  # … of it spent in the BN statistics all-reduces
    grad_s: list[float] = field(default_factory=list)  # … of it spent in the gradient all-reduce
    acc: list[tuple[int, float]] = field(default_factory=list)


def sgd_momentum_step(params: list[Tensor], velocity: list[Tensor], lr: float, momentum: float) -> None:
    """``torch.optim.SGD``'s update (dampening 0, no Nesterov): ``v ← momentum·v + g``, ``p ← p − lr·v``.

    :func:`bn_core.optim.heavy_ball_step`, not a ``torch.optim`` optimizer, whose first step
    imports ``torch._dynamo``: ~1.5 s of start-up in every fresh worker process. With ``v``
    starting at 0 the first step gives ``v = g``, exactly torch's first step.
    """
    with torch.no_grad():
        heavy_ball_step(params, [p.grad for p in params], velocity, lr, momentum)


def _new_run(initial: nn.Module, cfg: DistConfig, device: torch.device) -> _Run:
    model = copy.deepcopy(initial).to(device)
    for layer in _bn_layers(model):
        if isinstance(layer, nn.SyncBatchNorm):
            _record_torch_sync_stats(layer, cfg.world_size)
    return _Run(model, [torch.zeros_like(p) for p in model.parameters()])


def _step(run: _Run, x: Tensor, y: Tensor, cfg: DistConfig, lr: float) -> None:
    """One data-parallel update, timed: forward, backward (BN all-reduces inside), gradient average, SGD."""
    meters = [m.meter for m in _bn_layers(run.model) if isinstance(m, SyncManualBatchNorm)]
    bn_before, grad_before = sum(m.seconds for m in meters), run.grad_meter.seconds
    start = time.perf_counter()
    loss = _backprop(run, x, y)
    _average_gradients([run.model], run.grad_meter, cfg.world_size, dist.group.WORLD)
    sgd_momentum_step(list(run.model.parameters()), run.velocity, lr, cfg.momentum)
    if x.is_cuda:
        torch.cuda.synchronize()
    run.step_s.append(time.perf_counter() - start)
    run.bn_s.append(sum(m.seconds for m in meters) - bn_before)
    run.grad_s.append(run.grad_meter.seconds - grad_before)
    run.loss.append(loss.detach())
    _record_stats(run, cfg)


def _lockstep_step(runs: list[_Run], x: Tensor, y: Tensor, cfg: DistConfig, lr: float, group: Any) -> None:
    """One update of every variant with one gradient all-reduce for all of them; untimed (``lanes`` > 1).

    The same update as :func:`_step` for each model: the sums of independent gradients do
    not depend on which other gradients share the all-reduce.
    """
    for run in runs:
        run.loss.append(_backprop(run, x, y).detach())
        _record_stats(run, cfg)
    _average_gradients([run.model for run in runs], CommMeter(), cfg.world_size, group)
    for run in runs:
        sgd_momentum_step(list(run.model.parameters()), run.velocity, lr, cfg.momentum)


def _backprop(run: _Run, x: Tensor, y: Tensor) -> Tensor:
    """This rank's loss on its shard and its gradients (sync BN's all-reduces run inside)."""
    run.model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(run.model(x), y)
    loss.backward()
    return loss


def _record_stats(run: _Run, cfg: DistConfig) -> None:
    layers = _bn_layers(run.model) if cfg.record_stats else []
    if layers:
        c = cfg.stats_channel
        run.stats.append(torch.stack([torch.stack([m.last_mu_B[c], m.last_var_B[c]]) for m in layers]).float())


@torch.no_grad()
def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    """Test accuracy in eval mode (BN uses this rank's running statistics; no communication)."""
    model.eval()
    correct = (model(x).argmax(dim=1) == y).sum()
    model.train()
    return float(correct) / len(y)


def _train_run(
    rank: int,
    spec: Spec,
    initial_models: dict,
    b: int,
    seed: int,
    device: torch.device,
    report: Callable,
    group: Any = None,
) -> dict:
    """Train every variant on the same shards, interleaved step by step, so timings share the machine's noise.

    ``group``: a lane's process group (:func:`_train_in_lanes`): every collective of this run
    goes through it, one gradient all-reduce per lockstep step, untimed. None: WORLD, timed.
    """
    cfg = spec.cfg
    data = {k: v.to(device) for k, v in spec.data.items()}
    runs = {v: _new_run(model, cfg, device) for (s, v), model in initial_models.items() if s == seed}
    if group is not None:
        for layer in (m for run in runs.values() for m in _bn_layers(run.model)):
            layer.process_group = group
    steps, lr = replica_schedule(cfg, b, len(data["y_train"]))
    shards = global_batches(len(data["y_train"]), cfg.world_size * b, steps, seed)[:, rank * b : (rank + 1) * b]
    for t in range(steps):
        idx = shards[t].to(device)
        x, y = data["x_train"][idx], data["y_train"][idx]
        if group is None:
            for run in runs.values():
                _step(run, x, y, cfg, lr)
        else:
            _lockstep_step(list(runs.values()), x, y, cfg, lr, group)
        if (t + 1) % cfg.eval_every == 0 or t + 1 == steps:
            for run in runs.values():
                run.acc.append((t + 1, _accuracy(run.model, data["x_test"], data["y_test"])))
            report((t + 1) / steps)
    return {"images": b, "seed": seed, "variants": {v: _run_record(run) for v, run in runs.items()}}


def _run_record(run: _Run) -> dict:
    bn_meters = [m.meter for m in _bn_layers(run.model) if isinstance(m, SyncManualBatchNorm)]
    return {
        "loss": torch.stack(run.loss).float().cpu().numpy(),
        "stats": torch.stack(run.stats).cpu().numpy() if run.stats else None,  # (steps, layers, 2)
        "step_s": np.asarray(run.step_s),
        "bn_s": np.asarray(run.bn_s),
        "grad_s": np.asarray(run.grad_s),
        "acc": run.acc,
        "bn_comm": (
            sum(m.calls for m in bn_meters),
            sum(m.bytes for m in bn_meters),
            sum(m.seconds for m in bn_meters),
        ),
        "grad_comm": (run.grad_meter.calls, run.grad_meter.bytes, run.grad_meter.seconds),
        "bn_layers": len(_bn_layers(run.model)),
        "params": sum(p.numel() for p in run.model.parameters()),
    }
