"""Batch normalization across devices on ``torch.distributed``: per-replica vs synchronized statistics.

Data-parallel training gives each replica (rank) a shard of every global batch. With
plain BN each rank normalizes with the statistics of its own shard: ``b`` examples
("images per GPU" in Wu & He 2018, Fig. 1), not the global ``W·b``. Synchronized BN
(cross-GPU BN, Peng et al. 2018) all-reduces the statistics so that every rank
normalizes with the global ``mu_B`` and ``var_B``.

This module holds:

* :class:`SyncManualBatchNorm`: :class:`bn_core.layers.ManualBatchNorm` with an
  optional process group. Same parameters, buffers and ``state_dict`` layout. In train
  mode it all-reduces one ``(3, C)`` buffer per layer, each channel's
  ``[count, Σx, Σx²]``; its backward all-reduces ``[Σ dy, Σ dy·x_hat]`` (``(2, C)``).
  With ``sync=False`` it is per-replica BN through the same code minus the two
  all-reduces, so timing the two isolates the cost of synchronizing.
* :func:`launch`: spawns 2–4 worker processes on 127.0.0.1 (gloo on the CPU, NCCL
  when every rank gets its own GPU), trains a small digits net data-parallel with
  per-replica BN, synchronized BN and group norm in lockstep, and returns
  DataFrames. It stops every worker it starts: on success, on a worker's error or
  crash, on a timeout and on any exception in the parent.

Why a hand-written synchronized BN: ``nn.SyncBatchNorm`` refuses CPU tensors
("expected input tensor to be on GPU …"), so on a CPU-only machine this is the
implementation. With CUDA and one GPU per rank the workers also train
``nn.SyncBatchNorm`` (variant ``sync_torch``) and :func:`launch` compares the two.

Numerics of ``var_B = E[x²] − E[x]²``: one all-reduce of raw sums is what makes a
single collective enough (and exact when ranks hold different counts, which is why
``nn.SyncBatchNorm`` all-gathers means instead). Its weakness is cancellation when
``|mu_B| ≫ sigma_B``; the sums are therefore accumulated and reduced in float64,
which keeps ~16 digits: the result loses accuracy only once ``|mu_B|/sigma_B`` nears
1e4 even for float32 activations. The backward sums need no such care.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (Algorithm 1, §3 gradients);
Wu & He 2018, arXiv:1803.08494 (BN error vs images per GPU; group norm);
Peng et al. 2018, arXiv:1711.07240 (MegDet: cross-GPU BN for detection);
Goyal et al. 2017, arXiv:1706.02677 (per-worker BN batch size in data parallelism).
"""

from __future__ import annotations

import contextlib
import copy
import datetime
import math
import os
import pickle
import queue as queue_lib
import socket
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing import spawn as mp_spawn
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import Tensor, nn

from bn_core.functional import (
    BNCache,
    batch_norm_inference,
    check_train_batch,
    per_channel,
    reduce_dims,
    values_per_channel,
)
from bn_core.layers import ManualBatchNorm, default_groups, make_norm
from bn_core.models import CNNConfig, MLPConfig, build_model
from bn_core.progress import Progress

if TYPE_CHECKING:  # pandas only for the annotations: the workers import this module and never need it
    import pandas as pd

__all__ = [
    "CommMeter",
    "SyncManualBatchNorm",
    "sync_batch_norm_forward",
    "sync_batch_norm_backward",
    "DistConfig",
    "DistResult",
    "DistributedRunError",
    "VARIANTS",
    "launch",
    "global_batches",
    "build_variant_model",
    "run_schedule",
    "model_config",
    "sgd_momentum_step",
    "pick_backend",
    "free_port",
]

VARIANTS = ("per_replica", "sync", "group")  # "sync_torch" (nn.SyncBatchNorm) is added on CUDA


# ---------------------------------------------------------------------------
# Synchronized BN: the math
# ---------------------------------------------------------------------------


@dataclass
class CommMeter:
    """What one layer (or the gradient averaging) sent through all-reduce: calls, bytes, seconds."""

    calls: int = 0
    bytes: int = 0  # payload per rank: numel × element size of every all-reduced tensor
    seconds: float = 0.0  # wall time inside all_reduce, including waiting for the slowest rank

    def all_reduce(self, t: Tensor, group: Any) -> Tensor:
        """Sum ``t`` over the group, in place, and count the cost."""
        start = time.perf_counter()
        dist.all_reduce(t, op=dist.ReduceOp.SUM, group=group)
        if t.is_cuda:
            torch.cuda.synchronize(t.device)  # NCCL returns before the data has moved
        self.seconds += time.perf_counter() - start
        self.calls += 1
        self.bytes += t.numel() * t.element_size()
        return t


def channel_sums(x: Tensor) -> Tensor:
    """Each channel's ``[count, Σx, Σx²]`` as a ``(3, C)`` float64 tensor (float64: see the module doc)."""
    dims = reduce_dims(x)
    x64 = x.detach().to(torch.float64)  # (N, C, *S)
    count = torch.full((x.shape[1],), float(values_per_channel(x)), dtype=torch.float64, device=x.device)  # (C,)
    return torch.stack([count, x64.sum(dim=dims), (x64 * x64).sum(dim=dims)])  # (3, C)


def stats_from_sums(sums: Tensor) -> tuple[Tensor, Tensor, int]:
    """Global ``mu_B``, biased ``var_B`` (float64, ``(C,)``) and the global count ``M`` from summed sums."""
    M = sums[0]  # (C,)  values per channel over every rank
    mu_B = sums[1] / M  # (C,)  E[x]
    var_B = (sums[2] / M - mu_B * mu_B).clamp_min(0.0)  # (C,)  E[x²] − E[x]²; rounding can dip below 0
    return mu_B, var_B, int(M[0].item())


def sync_batch_norm_forward(
    x: Tensor, gamma: Tensor, beta: Tensor, eps: float = 1e-5, group: Any = None, meter: CommMeter | None = None
) -> tuple[Tensor, BNCache, int]:
    """Algorithm 1 with the statistics of the *global* batch: the union of every rank's ``x``.

    Args:
        x: this rank's shard, ``(N, C)`` or ``(N, C, *spatial)``.
        gamma, beta: ``(C,)``, identical on every rank.
        group: the process group to all-reduce over; ``None`` = no all-reduce
            (per-replica statistics: this shard alone).
        meter: counts the all-reduce's calls, bytes and time.

    Returns:
        ``y`` (shape of ``x``), a :class:`BNCache` whose ``mu``/``var`` are the global
        ``mu_B``/``var_B``, and ``M``, the global number of values per channel.
    """
    sums = channel_sums(x)  # (3, C)  [count, Σx, Σx²] of this shard
    if group is not None:
        (meter or CommMeter()).all_reduce(sums, group)  # (3, C)  … of the global batch
    mu64, var64, M = stats_from_sums(sums)
    mu_B, var_B = mu64.to(x.dtype), var64.to(x.dtype)  # (C,)
    x_mu = x - per_channel(mu_B, x)  # (N, C, *S)  centred with the global mean
    inv_std = torch.rsqrt(var_B + eps)  # (C,)
    x_hat = x_mu * per_channel(inv_std, x)  # (N, C, *S)  step 3: normalize
    y = torch.addcmul(per_channel(beta, x), per_channel(gamma, x), x_hat)  # (N, C, *S)  step 4
    return y, BNCache(x_mu=x_mu, x_hat=x_hat, mu_B=mu_B, var_B=var_B, inv_std=inv_std, gamma=gamma, eps=eps), M


def sync_batch_norm_backward(
    dy: Tensor, cache: BNCache, M: int, group: Any = None, meter: CommMeter | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """The compact BN gradient with the two sums taken over the global batch.

    ``dx = gamma·inv_std/M · (M·dy − Σ_global dy − x_hat·Σ_global dy·x_hat)``: every
    example's output depends on every rank's inputs through ``mu_B`` and ``var_B``, and
    those two sums are all that the other ranks contribute.

    Returns:
        ``(dx, dgamma, dbeta)``. ``dgamma``/``dbeta`` are this rank's *local* sums: the
        data-parallel gradient all-reduce adds them up like every other parameter's.
    """
    dims = reduce_dims(dy)
    dbeta = dy.sum(dim=dims)  # (C,)  local Σ dy
    dgamma = (dy * cache.x_hat).sum(dim=dims)  # (C,)  local Σ dy·x_hat
    sums = torch.stack([dbeta, dgamma])  # (2, C)
    if group is not None:
        (meter or CommMeter()).all_reduce(sums, group)  # (2, C)  global sums (stack made a new tensor)
    scale = cache.gamma * cache.inv_std / M  # (C,)
    dx = per_channel(scale, dy) * (
        M * dy - per_channel(sums[0], dy) - cache.x_hat * per_channel(sums[1], dy)
    )  # (N, C, *S)
    return dx, dgamma, dbeta


class _SyncBatchNormFunction(torch.autograd.Function):
    """Autograd glue: forward and backward each all-reduce once."""

    @staticmethod
    def forward(ctx, x: Tensor, gamma: Tensor, beta: Tensor, eps: float, group: Any, meter: CommMeter):
        y, cache, M = sync_batch_norm_forward(x, gamma, beta, eps, group, meter)
        ctx.save_for_backward(cache.x_mu, cache.x_hat, cache.mu_B, cache.var_B, cache.inv_std, gamma)
        ctx.eps, ctx.M, ctx.group, ctx.meter = eps, M, group, meter
        mu_B, var_B = cache.mu_B.detach(), cache.var_B.detach()
        count = torch.tensor(M)
        ctx.mark_non_differentiable(mu_B, var_B, count)
        return y, mu_B, var_B, count

    @staticmethod
    def backward(ctx, dy: Tensor, _dmu: Tensor, _dvar: Tensor, _dM: Tensor):
        x_mu, x_hat, mu_B, var_B, inv_std, gamma = ctx.saved_tensors
        cache = BNCache(x_mu=x_mu, x_hat=x_hat, mu_B=mu_B, var_B=var_B, inv_std=inv_std, gamma=gamma, eps=ctx.eps)
        dx, dgamma, dbeta = sync_batch_norm_backward(dy.contiguous(), cache, ctx.M, ctx.group, ctx.meter)
        return dx, dgamma, dbeta, None, None, None


class SyncManualBatchNorm(ManualBatchNorm):
    """:class:`ManualBatchNorm` whose train-mode statistics come from every rank of a process group.

    Args:
        num_features, eps, momentum, affine, track_running_stats: as ``ManualBatchNorm``.
        process_group: the ranks to synchronize; ``None`` = the default (WORLD) group,
            as in ``nn.SyncBatchNorm``.
        sync: False gives per-replica BN through the same code without the all-reduces.

    Train mode: every rank normalizes with the global ``mu_B``/``var_B`` and updates its
    running statistics with them (the variance made unbiased with the *global* count
    ``M``), so the buffers stay identical on every rank. Outside an initialized process
    group (or with one rank) it is plain BN. Eval mode uses the buffers, no
    communication. ``last_mu_B``/``last_var_B`` keep the latest batch statistics
    (attributes, not buffers: the ``state_dict`` matches ``nn.BatchNorm*``).
    """

    def __init__(
        self,
        num_features: int,
        eps: float = 1e-5,
        momentum: float | None = 0.1,
        affine: bool = True,
        track_running_stats: bool = True,
        process_group: Any = None,
        sync: bool = True,
    ) -> None:
        super().__init__(num_features, eps, momentum, affine, track_running_stats)
        self.process_group = process_group
        self.sync = sync
        self.meter = CommMeter()
        self.last_mu_B: Tensor | None = None
        self.last_var_B: Tensor | None = None

    def _group(self) -> Any:
        """The group to all-reduce over, or None for local statistics."""
        if not (self.sync and dist.is_available() and dist.is_initialized()):
            return None
        group = self.process_group or dist.group.WORLD
        return group if dist.get_world_size(group) > 1 else None

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() < 2 or x.shape[1] != self.num_features:
            raise ValueError(f"Expected input (N, {self.num_features}, *spatial), got shape {tuple(x.shape)}.")
        gamma, beta = self._gamma_beta(x)
        if not (self.training or not self.track_running_stats):
            return batch_norm_inference(x, self.running_mean, self.running_var, gamma, beta, self.eps)
        group = self._group() if self.training else None  # like nn.SyncBatchNorm: never sync outside training
        if group is None:
            check_train_batch(x)  # local statistics; synchronized ones only need M > 1 over all ranks (below)
        y, mu_B, var_B, M = _SyncBatchNormFunction.apply(x, gamma, beta, self.eps, group, self.meter)
        if int(M) <= 1:
            raise ValueError("Synchronized BN needs more than 1 value per channel over all ranks together.")
        self.last_mu_B, self.last_var_B = mu_B, var_B
        self._track(mu_B, var_B, int(M))  # the global batch's statistics, unbiased with the global count
        return y

    def extra_repr(self) -> str:
        return f"{super().extra_repr()}, sync={self.sync}"


# ---------------------------------------------------------------------------
# The experiment a launch runs
# ---------------------------------------------------------------------------

MAX_WORLD = 4
GN_GROUP_TARGET = 8  # group norm: the largest divisor of C that is ≤ 8 (Wu & He's G = 32 needs C ≥ 32)
EQ_CHANNELS, EQ_SPATIAL = 3, (2, 2)  # the equivalence check's per-rank input: (b, 3, 2, 2)
LR_REFERENCE_BATCH = 32  # DistConfig.lr is the learning rate for this global batch
Fault = Literal["none", "raise", "exit", "hang"]


@dataclass(frozen=True)
class DistConfig:
    """One launch: the worker group, the runs it trains and the checks it makes. Frozen, so pages can cache it."""

    world_size: int = 2  # ranks = worker processes, 2 … 4
    images_per_replica: tuple[int, ...] = (4,)  # examples per rank per step; each size is a run in the same launch
    seeds: tuple[int, ...] = (0,)  # init + batch-order seeds; each seed is a run in the same launch
    variants: tuple[str, ...] = VARIANTS  # normalizations trained in lockstep (interleaved step by step)
    model: Literal["mlp", "cnn"] = "mlp"  # the digits net: MLP on 64 pixels, or the small CNN on 8×8 images
    depth: int = 2  # MLP hidden layers (each has a norm layer)
    width: int = 64  # MLP hidden units
    channels: tuple[int, int] = (16, 32)  # CNN channels of its two conv blocks
    steps: int = 200  # optimizer updates per run (when epochs is None)
    epochs: float | None = None  # if set, every run sees this many epochs: steps = ⌈epochs·N_train/(W·b)⌉
    lr: float = 0.1  # SGD learning rate for a global batch of 32; scaled linearly with W·b (Goyal et al. 2017)
    momentum: float = 0.9  # SGD heavy-ball momentum
    eval_every: int = 50  # steps between test-accuracy evaluations (the last step is always evaluated)
    record_stats: bool = True  # every rank's mu_B, var_B (channel stats_channel, every BN layer) at every step
    stats_channel: int = 0  # the channel / unit whose statistics are recorded
    equivalence_per_rank: int | None = None  # examples per rank for the sync-vs-single-process check; None = skip
    data_seed: int = 0  # the digits train/test split
    backend: Literal["auto", "gloo", "nccl"] = "auto"  # auto: NCCL with one GPU per rank, else gloo on the CPU
    timeout_s: float = 300.0  # the whole launch, start-up included (collectives time out 30 s later)
    fault: Fault = "none"  # test hook: rank fault_rank raises / exits / hangs right after joining the group
    fault_rank: int = 1  # the rank that misbehaves


class DistributedRunError(RuntimeError):
    """A launch failed: a worker raised, crashed or timed out. Every worker was stopped first.

    ``str(err)`` is one readable line; the worker's traceback, if any, is in ``detail`` (for logs).
    """

    def __init__(self, message: str, detail: str = "", pids: tuple[int, ...] = ()) -> None:
        super().__init__(message)
        self.detail = detail  # the failing worker's traceback
        self.pids = pids  # the worker processes the launch started (all stopped)


def pick_backend(requested: str, world_size: int) -> str:
    """gloo on the CPU, or NCCL when CUDA is the device and there is one GPU per rank."""
    from bn_core.device import pick_device  # here, not at the top: workers never need it

    if requested not in ("auto", "gloo", "nccl"):
        raise ValueError(f"Unknown backend {requested!r}; choose auto, gloo or nccl.")
    cuda_ok = torch.cuda.is_available() and pick_device().type == "cuda"
    enough = cuda_ok and torch.cuda.device_count() >= world_size
    if requested == "nccl" and not enough:
        raise ValueError(
            f"NCCL needs CUDA with one GPU per rank: {world_size} ranks, {torch.cuda.device_count()} GPUs."
        )
    return "nccl" if requested == "nccl" or (requested == "auto" and enough and dist.is_nccl_available()) else "gloo"


def global_batches(n_train: int, global_batch: int, steps: int, seed: int) -> Tensor:
    """Training indices ``(steps, global_batch)``: shuffled epochs, the incomplete last batch dropped.

    Every rank draws the same schedule from ``seed`` and takes columns
    ``rank·b … (rank+1)·b``: disjoint shards of each global batch.
    """
    if not 1 <= global_batch <= n_train:
        raise ValueError(f"A global batch of {global_batch} does not fit in {n_train} training examples.")
    gen = torch.Generator().manual_seed(seed)
    per_epoch = n_train // global_batch
    epochs = [torch.randperm(n_train, generator=gen)[: per_epoch * global_batch] for _ in range(-(-steps // per_epoch))]
    return torch.cat(epochs).view(-1, global_batch)[:steps]


def run_schedule(cfg: DistConfig, images_per_replica: int, n_train: int) -> tuple[int, float]:
    """Steps and learning rate of one run: the linear scaling rule, lr ∝ global batch W·b (arXiv:1706.02677)."""
    global_batch = cfg.world_size * images_per_replica
    steps = cfg.steps if cfg.epochs is None else math.ceil(cfg.epochs * n_train / global_batch)
    return steps, cfg.lr * global_batch / LR_REFERENCE_BATCH


def model_config(cfg: DistConfig) -> MLPConfig | CNNConfig:
    """The digits net the config names (10 classes, 64 pixels / 1×8×8), ReLU, norm before the activation."""
    if cfg.model == "mlp":
        return MLPConfig(in_features=64, n_classes=10, depth=cfg.depth, width=cfg.width, activation="relu")
    return CNNConfig(image_shape=(1, 8, 8), n_classes=10, channels=cfg.channels, activation="relu")


def build_variant_model(variant: str, model_cfg: MLPConfig | CNNConfig, seed: int) -> nn.Module:
    """The same net (identical weights for a seed) with the variant's normalization in every block."""
    factories: dict[str, Callable[[int], nn.Module]] = {
        "per_replica": lambda C: SyncManualBatchNorm(C, model_cfg.eps, model_cfg.bn_momentum, sync=False),
        "sync": lambda C: SyncManualBatchNorm(C, model_cfg.eps, model_cfg.bn_momentum, sync=True),
        "group": lambda C: make_norm("group", C, num_groups=default_groups(C, GN_GROUP_TARGET), eps=model_cfg.eps),
        "sync_torch": lambda C: nn.SyncBatchNorm(C, eps=model_cfg.eps, momentum=model_cfg.bn_momentum),
    }
    if variant not in factories:
        raise ValueError(f"Unknown variant {variant!r}; choose one of {', '.join(factories)}.")
    return build_model(model_cfg, seed, norm_factory=factories[variant])


def equivalence_inputs(world_size: int, per_rank: int, seed: int) -> dict[str, Tensor]:
    """The check's global batch ``x`` (mean 5, std 3: E[x²]−E[x]² must cope), ``dy``, ``gamma``, ``beta``; float64."""
    gen = torch.Generator().manual_seed(seed)
    shape = (world_size * per_rank, EQ_CHANNELS, *EQ_SPATIAL)
    x = 5.0 + 3.0 * torch.randn(shape, generator=gen, dtype=torch.float64)
    dy = torch.randn(shape, generator=gen, dtype=torch.float64)
    gamma = 1.0 + 0.5 * torch.randn(EQ_CHANNELS, generator=gen, dtype=torch.float64)
    beta = torch.randn(EQ_CHANNELS, generator=gen, dtype=torch.float64)
    return {"x": x, "dy": dy, "gamma": gamma, "beta": beta}


def _validate(cfg: DistConfig, n_train: int) -> None:
    problems = []
    if not 2 <= cfg.world_size <= MAX_WORLD:
        problems.append(f"world size must be 2 … {MAX_WORLD} ranks (got {cfg.world_size})")
    if any(b < 1 or cfg.world_size * b > n_train for b in cfg.images_per_replica):
        problems.append(f"images per replica must be ≥ 1 with world size × images ≤ {n_train} training examples")
    if cfg.model == "mlp" and "per_replica" in cfg.variants and min(cfg.images_per_replica, default=2) < 2:
        problems.append(
            "per-replica BN in the MLP needs ≥ 2 images per replica: with one example each unit's x̂ is 0 "
            "and the output is just β"
        )
    unknown = set(cfg.variants) - set(VARIANTS)
    if unknown:
        problems.append(f"unknown variants {sorted(unknown)}; nn.SyncBatchNorm ('sync_torch') joins by itself on CUDA")
    if cfg.steps < 1 or cfg.eval_every < 1 or not (cfg.lr > 0 and math.isfinite(cfg.lr)):
        problems.append("steps and eval_every must be ≥ 1 and lr a positive number")
    if cfg.epochs is not None and not 0 < cfg.epochs <= 20:
        problems.append(f"epochs must be in (0, 20] (got {cfg.epochs})")
    if cfg.fault not in ("none", "raise", "exit", "hang") or not 0 <= cfg.fault_rank < max(cfg.world_size, 1):
        problems.append("fault must be none/raise/exit/hang and fault_rank a rank")
    if cfg.model not in ("mlp", "cnn") or cfg.timeout_s <= 0 or not cfg.seeds:
        problems.append("model must be mlp or cnn, timeout_s positive and seeds not empty")
    first_width = cfg.width if cfg.model == "mlp" else cfg.channels[0]
    if not 0 <= cfg.stats_channel < first_width:
        problems.append(f"stats_channel must be a channel of the first layer, 0 … {first_width - 1}")
    if problems:
        raise ValueError("Invalid multi-device config: " + "; ".join(problems) + ".")


# ---------------------------------------------------------------------------
# The worker: one rank of the data-parallel group
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Spec:
    """Everything a worker needs, pickled once into the spawned process."""

    cfg: DistConfig
    port: int
    backend: str
    data: dict[str, Tensor]  # x_train, y_train, x_test, y_test in shared memory (workers skip sklearn)
    models: Tensor  # uint8, shared memory: the pickled {(seed, variant): initial model}, built once by the parent
    parent_pid: int
    t0: float  # the parent's time.time() at launch, for the start-up time


def _watch_parent(parent_pid: int) -> None:
    """Exit if the parent dies (e.g. the server was killed): a worker never outlives its launcher."""

    def watch() -> None:
        while True:
            if os.getppid() != parent_pid:
                os._exit(2)
            time.sleep(0.5)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def _inject_fault(rank: int, cfg: DistConfig) -> None:
    if cfg.fault == "none" or rank != cfg.fault_rank:
        return
    if cfg.fault == "raise":
        raise RuntimeError(f"injected fault on rank {rank} (DistConfig.fault='raise')")
    if cfg.fault == "exit":
        os._exit(3)  # a hard crash: no message, no clean-up, like a segfault or an OOM kill
    time.sleep(10 * cfg.timeout_s)  # "hang": only the launcher's timeout can end this


def _worker(rank: int, spec: _Spec, out: Any) -> None:
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


def _join_group(rank: int, spec: _Spec) -> torch.device:
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


def _work(rank: int, spec: _Spec, device: torch.device, out: Any) -> dict:
    cfg = spec.cfg
    result: dict[str, Any] = {"rank": rank, "device": str(device), "runs": []}
    result["torch_sync_note"] = _torch_sync_note(device) if rank == 0 else None
    if cfg.equivalence_per_rank:
        result["equivalence"] = _equivalence(rank, cfg.world_size, cfg.equivalence_per_rank, cfg.seeds[0], device)
    jobs = [(b, s) for b in cfg.images_per_replica for s in cfg.seeds]
    initial_models = pickle.loads(spec.models.numpy().tobytes())
    for k, (b, seed) in enumerate(jobs):

        def report(fraction: float, b: int = b, k: int = k) -> None:
            if rank == 0:
                out.put(("progress", rank, ((k + fraction) / len(jobs), f"{b} images per replica")))

        result["runs"].append(_train_run(rank, spec, initial_models, b, seed, device, report))
    return result


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


def _average_gradients(model: nn.Module, meter: CommMeter, world_size: int) -> None:
    """Data parallelism: one all-reduce of every gradient, flattened, then ÷ world size (the mean loss)."""
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    flat = meter.all_reduce(torch.cat([g.reshape(-1) for g in grads]), dist.group.WORLD)
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

    Written out because constructing a ``torch.optim`` optimizer imports ``torch._dynamo``,
    ~1.5 s of start-up in every fresh worker process. With ``v`` starting at 0 the first
    step gives ``v = g``, exactly torch's first step.
    """
    grads = [p.grad for p in params]
    with torch.no_grad():
        torch._foreach_mul_(velocity, momentum)
        torch._foreach_add_(velocity, grads)
        torch._foreach_add_(params, velocity, alpha=-lr)


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
    run.model.zero_grad(set_to_none=True)
    loss = F.cross_entropy(run.model(x), y)
    loss.backward()
    _average_gradients(run.model, run.grad_meter, cfg.world_size)
    sgd_momentum_step(list(run.model.parameters()), run.velocity, lr, cfg.momentum)
    if x.is_cuda:
        torch.cuda.synchronize()
    run.step_s.append(time.perf_counter() - start)
    run.bn_s.append(sum(m.seconds for m in meters) - bn_before)
    run.grad_s.append(run.grad_meter.seconds - grad_before)
    run.loss.append(loss.detach())
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
    rank: int, spec: _Spec, initial_models: dict, b: int, seed: int, device: torch.device, report: Callable
) -> dict:
    """Train every variant on the same shards, interleaved step by step, so timings share the machine's noise."""
    cfg = spec.cfg
    data = {k: v.to(device) for k, v in spec.data.items()}
    runs = {v: _new_run(model, cfg, device) for (s, v), model in initial_models.items() if s == seed}
    steps, lr = run_schedule(cfg, b, len(data["y_train"]))
    shards = global_batches(len(data["y_train"]), cfg.world_size * b, steps, seed)[:, rank * b : (rank + 1) * b]
    for t in range(steps):
        idx = shards[t].to(device)
        x, y = data["x_train"][idx], data["y_train"][idx]
        for run in runs.values():
            _step(run, x, y, cfg, lr)
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


# ---------------------------------------------------------------------------
# The launcher
# ---------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class DistResult:
    """What a launch returns: long-format DataFrames, plus how it ran. ``rank`` columns are 0 … W−1."""

    config: DistConfig
    curves: pd.DataFrame  # images_per_replica, seed, variant, rank, step, metric (loss | test_acc), value
    stats: pd.DataFrame  # images_per_replica, seed, variant, rank, step, layer, metric (mu_B | var_B), value
    accuracy: pd.DataFrame  # images_per_replica, seed, variant, rank, value (final test accuracy)
    timing: pd.DataFrame  # images_per_replica, seed, variant, rank, metric, value: median ms per step of
    #   step_ms (the whole update), compute_ms, bn_allreduce_ms, grad_allreduce_ms
    comm: pd.DataFrame  # images_per_replica, seed, variant, kind, calls_per_step, bytes_per_step, …
    equivalence: pd.DataFrame | None  # variant, quantity, max_abs_diff (vs one process over W·b)
    backend: str  # gloo or nccl
    device: str  # rank 0's device
    torch_sync_note: str | None  # what nn.SyncBatchNorm said on this device (CPU: its refusal)
    startup_s: float  # launch → every rank has joined the process group
    wall_s: float  # the whole launch
    pids: tuple[int, ...]  # the worker processes (all stopped by the time you read this)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (rank 0's rendezvous store binds it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


_PREPARATION_LOCK = threading.Lock()


@contextlib.contextmanager
def _without_parent_main() -> Any:
    """While starting workers: keep the spawned children from re-running the parent's ``__main__``.

    Why: "spawn" normally re-runs the parent's main script in every child (as
    ``__mp_main__``). Inside Streamlit, ``__main__`` is the app script itself, so every
    worker would import Streamlit and run the whole app in bare mode before starting,
    seconds of wasted start-up (and any page it runs could try to launch again). The
    worker's entry point lives in this module, so the children need nothing from
    ``__main__``. Only the preparation data of processes started inside this block
    changes; the lock keeps two launches from interleaving the swap.
    """
    original = mp_spawn.get_preparation_data

    def preparation_data(name: str) -> dict:
        data = original(name)
        data.pop("init_main_from_path", None)
        data.pop("init_main_from_name", None)
        return data

    with _PREPARATION_LOCK:
        mp_spawn.get_preparation_data = preparation_data
        try:
            yield
        finally:
            mp_spawn.get_preparation_data = original


def _stop_all(procs: list, grace_s: float = 3.0) -> None:
    """Terminate, then kill, every process still alive, and reap them all."""
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace_s
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in procs:
        if p.is_alive():
            p.kill()
            p.join(5.0)


def _died(procs: list, done: set[int]) -> str | None:
    """A worker that exited without a result or a message: how it ended."""
    for rank, p in enumerate(procs):
        if rank not in done and p.exitcode is not None:
            how = f"was killed by signal {-p.exitcode}" if p.exitcode < 0 else f"exited with code {p.exitcode}"
            return f"rank {rank} {how} without a result"
    return None


def _failure(procs: list, out: Any, done: set[int], errors: dict[int, tuple[str, str]]) -> DistributedRunError:
    """Name the root cause. A rank that died without a word (a crash) comes first: the errors its peers
    then report ("connection closed …") are consequences. Waits briefly for the dust to settle."""
    deadline = time.monotonic() + 0.5
    while time.monotonic() < deadline:
        with contextlib.suppress(queue_lib.Empty):
            kind, rank, payload = out.get(timeout=0.05)
            if kind == "error":
                errors.setdefault(rank, payload)
    crash = _died(procs, done | set(errors))
    detail = "\n".join(f"--- rank {r}\n{tb}" for r, (_, tb) in sorted(errors.items()))
    first = next(iter(errors.items()), None)
    if crash is not None:
        then = f" Then rank {first[0]} failed: {_short(first[1][0])}" if first else ""
        return DistributedRunError(f"The distributed run failed: {crash}.{then}", detail)
    return DistributedRunError(f"Rank {first[0]} failed: {_short(first[1][0])}", detail)


def _short(summary: str) -> str:
    """First line of a worker's error, at most 300 characters (gloo's messages run long)."""
    line = summary.strip().splitlines()[0] if summary.strip() else "unknown error"
    return line if len(line) <= 300 else line[:297] + "…"


def _supervise(procs: list, out: Any, cfg: DistConfig, t0: float, progress: Progress) -> tuple[dict, float]:
    """Collect every rank's result, forwarding progress; raise on an error, a crash or the timeout."""
    results: dict[int, dict] = {}
    ready: list[float] = []
    while len(results) < len(procs):
        try:
            kind, rank, payload = out.get(timeout=0.05)
        except queue_lib.Empty:
            if _died(procs, set(results)) is not None:
                raise _failure(procs, out, set(results), {}) from None
            if time.time() - t0 > cfg.timeout_s:
                raise DistributedRunError(f"The distributed run timed out after {cfg.timeout_s:g} s.") from None
            continue
        if kind == "error":
            raise _failure(procs, out, set(results), {rank: payload})
        if kind == "ready":
            ready.append(payload)
            progress(0.0, f"{len(ready)} of {len(procs)} ranks joined")
        elif kind == "progress":
            progress(*payload)
        elif kind == "result":
            results[rank] = payload
    return results, max(ready)


def _load_digits(seed: int) -> dict[str, Tensor]:
    """The digits split, in shared memory.

    Why shared memory: a spawned child reads its arguments from a pipe only after it has
    imported torch, and ``Process.start()`` blocks while the pipe (64 KB) is full. Shared
    tensors pickle as small handles, so the ranks start in parallel instead of in turn.
    """
    from bn_core.data import DataConfig, load_dataset  # here: workers get tensors and never import sklearn/pandas

    split = load_dataset(DataConfig(name="digits", seed=seed))
    return {k: getattr(split, k).clone().share_memory_() for k in ("x_train", "y_train", "x_test", "y_test")}


def _initial_models(cfg: DistConfig, backend: str) -> Tensor:
    """Every (seed, variant)'s initial model, built here once and pickled into shared memory.

    All ranks unpickle the same bytes, so they start from identical weights (what DDP's
    initial broadcast guarantees), and the workers skip the builders' one-off imports
    (~0.7 s each).
    """
    variants = [*cfg.variants, *(["sync_torch"] if backend == "nccl" else [])]
    models = {(s, v): build_variant_model(v, model_config(cfg), s) for s in cfg.seeds for v in variants}
    return torch.frombuffer(bytearray(pickle.dumps(models)), dtype=torch.uint8).share_memory_()


def launch(cfg: DistConfig, progress: Progress | None = None) -> DistResult:
    """Spawn ``cfg.world_size`` workers on 127.0.0.1, run the experiment, stop them all, return DataFrames.

    Each worker is a ``torch.multiprocessing`` "spawn" process (safe inside a threaded
    server) with one torch thread. They rendezvous over TCP on a free port and train
    data-parallel: disjoint shards of every global batch, gradients averaged with one
    all-reduce per step, identical initial weights from the seed.

    Args:
        cfg: the launch; see :class:`DistConfig`.
        progress: ``progress(fraction, message)``, called in this process.

    Raises:
        ValueError: an invalid config, before anything starts.
        DistributedRunError: a worker raised, crashed or the launch timed out; every
            worker has been terminated (then killed) and reaped before it propagates.
    """
    data = _load_digits(cfg.data_seed)
    _validate(cfg, len(data["y_train"]))
    backend = pick_backend(cfg.backend, cfg.world_size)
    ctx = torch.multiprocessing.get_context("spawn")
    out = ctx.Queue()
    t0 = time.time()
    spec = _Spec(cfg, free_port(), backend, data, _initial_models(cfg, backend), os.getpid(), t0)
    procs = [ctx.Process(target=_worker, args=(r, spec, out), daemon=True) for r in range(cfg.world_size)]
    try:
        with _without_parent_main():
            for p in procs:
                p.start()
        (progress or (lambda f, m: None))(0.0, f"started {len(procs)} worker processes")
        results, startup_s = _supervise(procs, out, cfg, t0, progress or (lambda f, m: None))
    except DistributedRunError as err:
        err.pids = tuple(p.pid for p in procs if p.pid is not None)
        raise
    finally:
        _stop_all(procs)
        out.close()
        out.cancel_join_thread()
    return _result(cfg, backend, results, startup_s, time.time() - t0, tuple(p.pid for p in procs))


# ---------------------------------------------------------------------------
# Results → long-format DataFrames (in the parent only)
# ---------------------------------------------------------------------------


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


def _result(
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
