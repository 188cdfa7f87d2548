"""A launch's configuration and the pure pieces every rank computes alike: schedule, models, checks.

Sources: Goyal et al. 2017, arXiv:1706.02677 (linear learning-rate scaling with the global
batch); Wu & He 2018, arXiv:1803.08494 (group norm, BN error vs images per GPU).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
import torch.distributed as dist
from torch import Tensor, nn

from bn_core.layers import default_groups, make_norm
from bn_core.models import CNNConfig, MLPConfig, build_model
from bn_core.sync_bn import SyncManualBatchNorm

VARIANTS = ("per_replica", "sync", "group")  # "sync_torch" (nn.SyncBatchNorm) is added on CUDA
MAX_WORLD = 4
MAX_LANES = 4  # DistConfig.lanes: runs in flight per rank
GN_GROUP_TARGET = 8  # group norm: the largest divisor of C that is ≤ 8 (Wu & He's G = 32 needs C ≥ 32)
EQ_CHANNELS, EQ_SPATIAL = 3, (2, 2)  # the equivalence check's per-rank input: (b, 3, 2, 2)
LR_REFERENCE_BATCH = 32  # DistConfig.lr is the learning rate for this global batch
Fault = Literal["none", "raise", "exit", "hang"]
StartMethod = Literal["forkserver", "spawn"]


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
    start_method: StartMethod = "forkserver"  # forkserver: workers fork from one process that imported torch once
    # Runs in flight on every rank (gloo only), each in its own thread on its own process group: while one waits
    # for a collective another computes. With lanes > 1 a lockstep step all-reduces every variant's gradients
    # at once and the launch records no timing or communication figures: for sweeps that report accuracy only.
    lanes: int = 1


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


def replica_schedule(cfg: DistConfig, images_per_replica: int, n_train: int) -> tuple[int, float]:
    """Steps and learning rate of one run: the linear scaling rule, lr ∝ global batch W·b (arXiv:1706.02677)."""
    global_batch = cfg.world_size * images_per_replica
    steps = cfg.steps if cfg.epochs is None else math.ceil(cfg.epochs * n_train / global_batch)
    return steps, cfg.lr * global_batch / LR_REFERENCE_BATCH


def replica_model_config(cfg: DistConfig) -> MLPConfig | CNNConfig:
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


def validate_launch(cfg: DistConfig, n_train: int) -> None:
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
    if not 1 <= cfg.lanes <= MAX_LANES:
        problems.append(f"lanes must be 1 … {MAX_LANES} (got {cfg.lanes})")
    if cfg.start_method not in ("forkserver", "spawn"):
        problems.append("start_method must be forkserver or spawn")
    if cfg.model not in ("mlp", "cnn") or cfg.timeout_s <= 0 or not cfg.seeds:
        problems.append("model must be mlp or cnn, timeout_s positive and seeds not empty")
    first_width = cfg.width if cfg.model == "mlp" else cfg.channels[0]
    if not 0 <= cfg.stats_channel < first_width:
        problems.append(f"stats_channel must be a channel of the first layer, 0 … {first_width - 1}")
    if problems:
        raise ValueError("Invalid multi-device config: " + "; ".join(problems) + ".")
