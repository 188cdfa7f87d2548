"""The batched sweep engine: K MLP configurations trained at once, as one stacked model.

A sweep varies, per configuration, the learning rate, the seed (init weights and batch
order), the init scale and BN on/off; everything else (data, depth, width, activation,
placement, optimizer kind, batch size, steps) is shared. The K weight matrices of a
layer are stacked into one ``(K, in, out)`` tensor and every step runs one batched
matmul (``torch.baddbmm``) per layer instead of K small ones, with a hand-written
forward *and* backward (no autograd graph):

* Linear: ``z = h @ W + b`` over a leading K axis; ``dW = hᵀ @ dz``, ``dh = dz @ Wᵀ``.
* BN (Algorithm 1 of arXiv:1502.03167) on ``(K, B, F)``: statistics per (k, f) over
  the B examples, i.e. batch norm over K·F channels; the backward is the compact formula
  of :mod:`bn_core.functional`, ``dx = γ·inv_std · (dy − (Σdy + x̂·Σ(dy·x̂)) / m)``.
  Running statistics follow PyTorch (biased var to normalize, unbiased var in the EMA).
* Cross-entropy: ``dlogits = (softmax − onehot)/B``.
* Optimizers: SGD, SGD with momentum, Adam, written for stacked parameters with a
  per-configuration learning rate of shape ``(K, 1, 1)``; same formulas as ``torch.optim``.

BN-on and BN-off configurations are two stacks ("groups") trained side by side. With BN
right after the linear map, that map's bias is cancelled by the mean subtraction (its
true gradient is 0), so the sweep does not add or update it during training; it still
enters the running mean and evaluation exactly as in :func:`bn_core.train.train`.
(``torch.optim.Adam`` in float32 moves such a bias on rounding noise alone; the sweep
keeps it fixed, one reason float32 records agree only approximately.)

**Divergence.** Every operation is independent across k, so a NaN in one configuration
cannot reach another. A configuration whose loss turns NaN/inf at step t is marked
``diverged_at = t``, its update for that step is not applied, and it is removed from its
stack (frozen); the others go on. The loss is checked every step (one sync per step).

**Equivalence.** Configuration i is exactly :func:`point_config` (cfg, i) trained by
:func:`bn_core.train.train`: the same init (:func:`bn_core.models.build_mlp`), batch
order, evaluation rows and formulas, so the records agree to float rounding (the tests
check it in float64).

**Not supported** (use :func:`bn_core.train.train` for these): the CNN; norms other
than batch/none and custom ``norm_factory`` s; different batch sizes, step counts,
architectures or optimizers within one sweep; layer statistics (percentiles,
saturation, gradient norms); ``on_step`` hooks; ``eval_batch_size`` (evaluation runs
in one batch); returning the trained models.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
import torch
from torch import Tensor

from bn_core.data import DataSplit, load_dataset
from bn_core.device import pick_device
from bn_core.models import MLP, MLPConfig, build_mlp
from bn_core.train import Progress, TrainConfig, fixed_rows, run_schedule, validate_config

__all__ = ["SweepPoint", "SweepConfig", "SweepResult", "sweep_grid", "point_config", "run_sweep"]


@dataclass(frozen=True)
class SweepPoint:
    """One configuration of a sweep: what differs from the shared base."""

    lr: float  # learning rate
    seed: int = 0  # init weights and batch order (as TrainConfig.seed)
    init_scale: float = 1.0  # multiplies the default-initialized weights
    bn: bool = True  # batch norm in every hidden block, or none


@dataclass(frozen=True)
class SweepConfig:
    """K configurations sharing ``base``; ``base.lr``, ``base.seed`` and the model's norm/init_scale are overridden."""

    base: TrainConfig = field(default_factory=TrainConfig)  # shared data, MLP, optimizer, batch size, steps, eval
    points: tuple[SweepPoint, ...] = ()  # the configurations, config_id = position
    target_acc: float = 0.9  # for "steps to reach target_acc test accuracy"


@dataclass(frozen=True, eq=False)
class SweepResult:
    """A sweep's records: one long table of curves and one row per configuration."""

    config: SweepConfig
    curves: pd.DataFrame  # config_id, lr, seed, init_scale, bn, step, metric, value
    summary: pd.DataFrame  # config_id, lr, seed, init_scale, bn, final_test_acc, final_train_acc,
    # steps_to_target, diverged_at, status
    wall_s: float  # seconds spent in run_sweep()


def sweep_grid(
    base: TrainConfig,
    lrs: Sequence[float],
    seeds: Sequence[int] = (0,),
    init_scales: Sequence[float] = (1.0,),
    bns: Sequence[bool] = (True, False),
    target_acc: float = 0.9,
) -> SweepConfig:
    """The full grid bn × lr × seed × init_scale (config ids in that nesting order)."""
    points = tuple(
        SweepPoint(lr=lr, seed=seed, init_scale=scale, bn=bn)
        for bn, lr, seed, scale in itertools.product(bns, lrs, seeds, init_scales)
    )
    return SweepConfig(base=base, points=points, target_acc=target_acc)


def point_config(cfg: SweepConfig, i: int) -> TrainConfig:
    """The :class:`TrainConfig` that trains configuration ``i`` alone with :func:`bn_core.train.train`."""
    p = cfg.points[i]
    model = replace(cfg.base.model, norm="batch" if p.bn else "none", init_scale=p.init_scale, backend="manual")
    return replace(cfg.base, lr=p.lr, seed=p.seed, model=model, variant=None)


# ---------------------------------------------------------------------------
# The stacked model: parameters (K, …), a hand-written forward and backward
# ---------------------------------------------------------------------------

_ACT_BACKWARD = {
    "sigmoid": lambda da, a: torch.ops.aten.sigmoid_backward(da, a),  # da·a·(1 − a)
    "tanh": lambda da, a: torch.ops.aten.tanh_backward(da, a),  # da·(1 − a²)
    "relu": lambda da, a: torch.ops.aten.threshold_backward(da, a, 0),  # da·[a > 0]
}
_ACT_FORWARD = {"sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu}


class _Stack:
    """K configurations of one group (all BN, or all without), stacked on a leading axis.

    Parameters, per hidden layer: ``W[layer]`` (K, in, out), ``b[layer]`` (K, 1, out) and, with
    BN, ``gamma[layer]``, ``beta[layer]`` (K, 1, out) and buffers ``running_mean[layer]``,
    ``running_var[layer]`` (K, 1, out). Head: ``W[-1]`` (K, width, C), ``b[-1]`` (K, 1, C).
    ``schedule`` (K, steps, B) holds each configuration's training indices.
    """

    _STACKED = ("W", "b", "gamma", "beta", "running_mean", "running_var")

    def __init__(self, ids: list[int], models: list[MLP], cfg: SweepConfig, schedule: Tensor, bn: bool) -> None:
        self.ids, self.bn, self.cfg = ids, bn, cfg.base
        mcfg: MLPConfig = cfg.base.model
        self.act, self.placement = mcfg.activation, mcfg.placement
        self.eps, self.momentum, self.n_layers = mcfg.eps, mcfg.bn_momentum, mcfg.depth
        affine = [[*(blk.linear for blk in m.blocks), m.head] for m in models]  # per config: L + 1 layers
        self.W = [torch.stack([layers[i].weight.detach().T for layers in affine]) for i in range(self.n_layers + 1)]
        self.b = [torch.stack([layers[i].bias.detach()[None] for layers in affine]) for i in range(self.n_layers + 1)]
        K, F, L = len(ids), mcfg.width, self.n_layers if bn else 0
        self.gamma, self.beta = [torch.ones(K, 1, F) for _ in range(L)], [torch.zeros(K, 1, F) for _ in range(L)]
        self.running_mean = [torch.zeros(K, 1, F) for _ in range(L)]
        self.running_var = [torch.ones(K, 1, F) for _ in range(L)]
        # BN right after the linear map subtracts the batch mean, so that layer's bias cancels exactly
        # (its true gradient is 0): skip it, and its matmul becomes a plain bmm. The head keeps its bias.
        self.hidden_bias = not (bn and self.placement == "before")
        self.lr = torch.tensor([cfg.points[i].lr for i in ids], dtype=torch.float64).view(K, 1, 1)
        self.schedule = schedule  # (K, steps, B)
        self.n_batches = 0  # BN batches seen, for momentum=None (cumulative average)
        self.opt_state: dict[str, list[Tensor]] = {}
        self.opt_step = 0
        self.loss_log: list[tuple[int, list[int], Tensor]] = []  # (step, ids, (K,) losses): no sync per step

    # -- bookkeeping ---------------------------------------------------------

    def params(self) -> list[Tensor]:
        """The trained tensors, in the order :meth:`backward` returns their gradients."""
        biases = self.b if self.hidden_bias else self.b[-1:]
        return [*self.W, *biases, *self.gamma, *self.beta]

    def _affine(self, layer: int, h: Tensor, train: bool) -> Tensor:
        """``h @ W + b`` for ``h`` (K, N, in), or a shared ``h`` (N, in) broadcast over K.

        Training skips a hidden bias that BN cancels; evaluation keeps it, because the
        running mean it is compared with includes it (see :meth:`_bn_train`).
        """
        with_bias = self.hidden_bias or not train or layer == self.n_layers
        if h.dim() == 2:
            z = torch.matmul(h, self.W[layer])  # (K, N, out)
            return z.add_(self.b[layer]) if with_bias else z
        if with_bias:
            return torch.baddbmm(self.b[layer], h, self.W[layer])
        return torch.bmm(h, self.W[layer])

    def to(self, device: torch.device, dtype: torch.dtype) -> _Stack:
        for name in self._STACKED:
            setattr(self, name, [t.to(device=device, dtype=dtype) for t in getattr(self, name)])
        self.lr, self.schedule = self.lr.to(device=device, dtype=dtype), self.schedule.to(device)
        return self

    def keep(self, mask: Tensor) -> None:
        """Drop the configurations where ``mask`` is False from every stacked tensor."""
        rows = torch.nonzero(mask).flatten()
        self.ids = [self.ids[i] for i in rows.tolist()]
        for name in self._STACKED:
            setattr(self, name, [t[rows] for t in getattr(self, name)])
        self.lr, self.schedule = self.lr[rows], self.schedule[rows]
        self.opt_state = {k: [t[rows] for t in v] for k, v in self.opt_state.items()}

    # -- forward ---------------------------------------------------------------

    def _bn_train(self, layer: int, z: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:
        """Algorithm 1 per (k, f) over the batch axis; replaces the running statistics."""
        mu_B = z.mean(dim=1, keepdim=True)  # (K, 1, F)  step 1: batch mean per (k, f)
        x_mu = z - mu_B  # (K, B, F)
        var_B = (x_mu * x_mu).mean(dim=1, keepdim=True)  # (K, 1, F)  step 2, biased; var_mean is 10× slower here
        inv_std = torch.rsqrt(var_B + self.eps)  # (K, 1, F)
        x_hat = x_mu * inv_std  # (K, B, F)  step 3
        y = torch.addcmul(self.beta[layer], self.gamma[layer], x_hat)  # (K, B, F)  step 4: γ·x̂ + β
        m = z.shape[1]
        momentum = 1.0 / self.n_batches if self.momentum is None else self.momentum
        mean_z = mu_B if self.hidden_bias else mu_B + self.b[layer]  # the mean of z with its bias, as in train()
        self.running_mean[layer] = torch.lerp(self.running_mean[layer], mean_z, momentum)
        self.running_var[layer] = torch.lerp(self.running_var[layer], var_B * (m / (m - 1)), momentum)  # unbiased
        return y, (x_hat, inv_std)

    def _bn_eval(self, layer: int, z: Tensor) -> Tensor:
        """Inference BN as one affine pass: z·s + (β − running_mean·s), s = γ / sqrt(running_var + eps)."""
        s = self.gamma[layer] * torch.rsqrt(self.running_var[layer] + self.eps)  # (K, 1, F)
        return torch.addcmul(self.beta[layer] - self.running_mean[layer] * s, z, s)

    def _normalize(self, layer: int, t: Tensor, train: bool) -> tuple[Tensor, tuple[Tensor, Tensor] | None]:
        if not self.bn:
            return t, None
        return self._bn_train(layer, t) if train else (self._bn_eval(layer, t), None)

    def forward(self, x: Tensor, train: bool) -> tuple[Tensor, list[tuple]]:
        """Logits ``(K, N, C)`` for input ``(K, N, D)`` or shared ``(N, D)``, and the backward cache.

        The cache holds, per hidden layer, (its input h, BN cache, activation output a).
        """
        act_fn, cache, h = _ACT_FORWARD[self.act], [], x
        if train and self.bn:
            self.n_batches += 1
        for layer in range(self.n_layers):
            z = self._affine(layer, h, train)
            if self.placement == "before":
                u, bn_cache = self._normalize(layer, z, train)
                a = act_fn(u)
                h_next = a
            else:
                a = act_fn(z)
                h_next, bn_cache = self._normalize(layer, a, train)
            cache.append((h, bn_cache, a))
            h = h_next
        return self._affine(self.n_layers, h, train), [*cache, (h, None, None)]

    # -- backward --------------------------------------------------------------

    def _bn_backward(self, layer: int, dy: Tensor, bn_cache: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor, Tensor]:
        """Compact BN backward per (k, f): dx = γ·inv_std · (dy − (Σdy + x̂·Σ(dy·x̂)) / m)."""
        x_hat, inv_std = bn_cache
        m = dy.shape[1]
        dbeta = dy.sum(dim=1, keepdim=True)  # (K, 1, F)
        dgamma = (dy * x_hat).sum(dim=1, keepdim=True)  # (K, 1, F)
        dx_centred = torch.sub(dy, torch.addcmul(dbeta, x_hat, dgamma), alpha=1.0 / m)  # (K, B, F)
        return dx_centred * (self.gamma[layer] * inv_std), dgamma, dbeta

    def _through_block(self, layer: int, dh: Tensor, bn_cache, a: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """From ∂ℓ/∂(block output) to ∂ℓ/∂z (the linear output), and dgamma, dbeta (0 without BN)."""
        act_bwd = _ACT_BACKWARD[self.act]
        if self.placement == "before":  # z → BN → act
            du = act_bwd(dh, a)
            return self._bn_backward(layer, du, bn_cache) if self.bn else (du, 0, 0)
        da, dgamma, dbeta = self._bn_backward(layer, dh, bn_cache) if self.bn else (dh, 0, 0)  # z → act → BN
        return act_bwd(da, a), dgamma, dbeta

    def backward(self, dlogits: Tensor, cache: list[tuple]) -> list[Tensor]:
        """Gradients in the order of :meth:`params` for ``dlogits`` (K, B, C), head first, down to layer 1."""
        L = self.n_layers
        dW, db, dgamma, dbeta = [None] * (L + 1), [None] * (L + 1), [None] * L, [None] * L
        dz = dlogits
        for layer in reversed(range(L + 1)):
            dW[layer] = torch.bmm(cache[layer][0].transpose(1, 2), dz)  # (K, in, out)  hᵀ @ dz
            if layer == L or self.hidden_bias:
                db[layer] = dz.sum(dim=1, keepdim=True)  # (K, 1, out)
            if layer > 0:
                dh = torch.bmm(dz, self.W[layer].transpose(1, 2))  # (K, B, in)  dz @ Wᵀ
                _, bn_cache, a = cache[layer - 1]
                dz, dgamma[layer - 1], dbeta[layer - 1] = self._through_block(layer - 1, dh, bn_cache, a)
        norm_grads = [*dgamma, *dbeta] if self.bn else []
        return [*dW, *(d for d in db if d is not None), *norm_grads]

    # -- optimizer ---------------------------------------------------------------

    def update(self, grads: list[Tensor]) -> None:
        """One step of the base optimizer on every stacked parameter, with per-config lr (K, 1, 1)."""
        params, kind = self.params(), self.cfg.optimizer
        if kind == "sgd":
            neg_lr = -self.lr
            for p, g in zip(params, grads, strict=True):
                p.addcmul_(g, neg_lr)
        elif kind == "momentum":
            self._momentum(params, grads)
        else:
            self._adam(params, grads)

    def _momentum(self, params: list[Tensor], grads: list[Tensor]) -> None:
        """torch.optim.SGD(momentum=μ): buf ← μ·buf + g (buf = g at the first step); p ← p − lr·buf."""
        mu = self.cfg.momentum
        if "buf" not in self.opt_state:
            self.opt_state["buf"] = [g.clone() for g in grads]
        else:
            for buf, g in zip(self.opt_state["buf"], grads, strict=True):
                buf.mul_(mu).add_(g)
        neg_lr = -self.lr
        for p, buf in zip(params, self.opt_state["buf"], strict=True):
            p.addcmul_(buf, neg_lr)

    def _adam(self, params: list[Tensor], grads: list[Tensor], betas=(0.9, 0.999), eps: float = 1e-8) -> None:
        """torch.optim.Adam: bias-corrected first and second moments (Kingma & Ba, arXiv:1412.6980)."""
        if "m" not in self.opt_state:
            self.opt_state = {"m": [torch.zeros_like(g) for g in grads], "v": [torch.zeros_like(g) for g in grads]}
        self.opt_step += 1
        bc1, bc2_sqrt = 1 - betas[0] ** self.opt_step, math.sqrt(1 - betas[1] ** self.opt_step)
        step_size = -self.lr / bc1  # (K, 1, 1)
        for p, g, m, v in zip(params, grads, self.opt_state["m"], self.opt_state["v"], strict=True):
            m.lerp_(g, 1 - betas[0])
            v.mul_(betas[1]).addcmul_(g, g, value=1 - betas[1])
            denom = (v.sqrt() / bc2_sqrt).add_(eps)
            p.addcmul_(m / denom, step_size)


# ---------------------------------------------------------------------------
# The loop
# ---------------------------------------------------------------------------


def _cross_entropy(logits: Tensor, onehot: Tensor) -> tuple[Tensor, Tensor]:
    """Mean cross-entropy per configuration ``(K,)`` and ``dlogits`` ``(K, B, C)``."""
    log_p = logits - torch.logsumexp(logits, dim=2, keepdim=True)  # (K, B, C)
    loss = -(log_p * onehot).sum(dim=2).mean(dim=1)  # (K,)
    dlogits = (torch.exp(log_p) - onehot) / logits.shape[1]  # (K, B, C)
    return loss, dlogits


@dataclass
class _Sweep:
    """Shared state of a running sweep."""

    cfg: SweepConfig  # with the model's in/out sizes filled from the data
    x_train: Tensor  # (N, D)
    onehot: Tensor  # (N, C)
    eval_x: Tensor  # (n_sub + N_test, D): the fixed train subset, then the test set
    eval_y: Tensor  # (n_sub + N_test,)
    n_sub: int  # rows of eval_x from the training set
    stacks: list[_Stack]
    eval_rows: list[tuple[int, list[int], Tensor]] = field(default_factory=list)  # step, ids, (3, K) on the CPU
    diverged_at: dict[int, int] = field(default_factory=dict)


def _validate(cfg: SweepConfig) -> None:
    if not isinstance(cfg.base.model, MLPConfig):
        raise ValueError("The sweep engine supports the MLP only; train the CNN with bn_core.train.train.")
    if not cfg.points:
        raise ValueError("A sweep needs at least one configuration.")
    for i in range(len(cfg.points)):
        validate_config(point_config(cfg, i))


def _setup(cfg: SweepConfig, split: DataSplit) -> _Sweep:
    device, dtype = pick_device(cfg.base.device), getattr(torch, cfg.base.dtype)
    model = replace(cfg.base.model, in_features=split.n_features, n_classes=split.n_classes)
    cfg = replace(cfg, base=replace(cfg.base, model=model))
    by_seed = {p.seed: run_schedule(replace(cfg.base, seed=p.seed), split) for p in cfg.points}
    stacks = []
    for bn in (True, False):
        ids = [i for i, p in enumerate(cfg.points) if p.bn == bn]
        if ids:
            models = [build_mlp(point_config(cfg, i).model, seed=cfg.points[i].seed) for i in ids]
            schedule = torch.stack([by_seed[cfg.points[i].seed] for i in ids])  # (K, steps, B)
            stacks.append(_Stack(ids, models, cfg, schedule, bn).to(device, dtype))
    _, sub_idx = fixed_rows(cfg.base, split)
    x_train, y_train = split.x_train.to(device=device, dtype=dtype), split.y_train.to(device)
    return _Sweep(
        cfg=cfg,
        x_train=x_train,
        onehot=torch.nn.functional.one_hot(y_train, split.n_classes).to(dtype),
        eval_x=torch.cat([x_train[sub_idx.to(device)], split.x_test.to(device=device, dtype=dtype)]),
        eval_y=torch.cat([y_train[sub_idx.to(device)], split.y_test.to(device)]),
        n_sub=len(sub_idx),
        stacks=stacks,
    )


def _evaluate(sw: _Sweep, stack: _Stack, step: int) -> None:
    """Eval-mode train accuracy (fixed subset), test accuracy and test loss for every config of a stack."""
    logits, _ = stack.forward(sw.eval_x, train=False)  # (K, n_sub + N_test, C)
    correct = (logits.argmax(dim=2) == sw.eval_y).double()  # (K, M)
    log_p = torch.log_softmax(logits[:, sw.n_sub :], dim=2)  # (K, N_test, C)
    y_test = sw.eval_y[sw.n_sub :].expand(len(stack.ids), -1)[..., None]  # (K, N_test, 1)
    test_loss = -log_p.gather(2, y_test).mean(dim=(1, 2))  # (K,)
    values = torch.stack([correct[:, : sw.n_sub].mean(1), correct[:, sw.n_sub :].mean(1), test_loss.double()])
    sw.eval_rows.append((step, list(stack.ids), values.cpu()))


def _train_step(sw: _Sweep, stack: _Stack, step: int) -> None:
    """One update of every configuration of a stack; diverged ones are recorded and dropped."""
    idx = stack.schedule[:, step - 1]  # (K, B)
    running = (stack.running_mean, stack.running_var, stack.n_batches)  # the forward replaces these lists' items
    running = (list(running[0]), list(running[1]), running[2])
    logits, cache = stack.forward(sw.x_train[idx], train=True)  # (K, B, C)
    loss, dlogits = _cross_entropy(logits, sw.onehot[idx])
    finite = torch.isfinite(loss)
    if not bool(finite.all()):  # one sync per step; the rare branch below
        for i in torch.nonzero(~finite).flatten().tolist():
            sw.diverged_at[stack.ids[i]] = step
        stack.running_mean, stack.running_var, stack.n_batches = running
        stack.keep(finite)  # freeze the diverged configs by removing them
        if stack.ids:
            _train_step(sw, stack, step)  # redo this step for the others, without them
        return
    stack.loss_log.append((step, stack.ids, loss))
    stack.update(stack.backward(dlogits, cache))


def run_sweep(cfg: SweepConfig, *, data: DataSplit | None = None, progress: Progress | None = None) -> SweepResult:
    """Train every configuration of ``cfg`` at once; never raises for divergence.

    Returns:
        A :class:`SweepResult`. Raises ``ValueError`` for an unsupported or invalid config.
    """
    _validate(cfg)
    started = time.perf_counter()
    split = data if data is not None else load_dataset(cfg.base.data)
    sw = _setup(cfg, split)
    steps, every = cfg.base.steps, cfg.base.eval_every
    for stack in sw.stacks:
        _evaluate(sw, stack, 0)
    report_every = max(1, steps // 100)
    for step in range(1, steps + 1):
        for stack in sw.stacks:
            if stack.ids:
                _train_step(sw, stack, step)
                if stack.ids and (step % every == 0 or step == steps):
                    _evaluate(sw, stack, step)
        if progress is not None and step % report_every == 0:
            progress(step / steps, f"step {step}/{steps}")
    curves, summary = _frames(sw)
    if progress is not None:
        progress(1.0, "done")
    return SweepResult(config=cfg, curves=curves, summary=summary, wall_s=time.perf_counter() - started)


# ---------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------


def _point_columns(cfg: SweepConfig) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "config_id": np.arange(len(cfg.points), dtype=np.int64),
            "lr": [p.lr for p in cfg.points],
            "seed": np.array([p.seed for p in cfg.points], dtype=np.int64),
            "init_scale": [p.init_scale for p in cfg.points],
            "bn": [p.bn for p in cfg.points],
        }
    )


def _loss_frame(sw: _Sweep) -> pd.DataFrame:
    """Every recorded batch loss: one block per run of steps with the same surviving configs."""
    blocks = []
    for stack in sw.stacks:
        for _, group in itertools.groupby(stack.loss_log, key=lambda entry: id(entry[1])):
            entries = list(group)
            ids = entries[0][1]
            losses = torch.stack([loss for _, _, loss in entries]).double().cpu().numpy()  # (n, K)
            steps = np.array([step for step, _, _ in entries])
            blocks.append(
                pd.DataFrame(
                    {
                        "config_id": np.tile(ids, len(steps)),
                        "step": np.repeat(steps, len(ids)),
                        "metric": "loss",
                        "value": losses.ravel(),
                    }
                )
            )
    return pd.concat(blocks, ignore_index=True)


def _eval_frame(sw: _Sweep) -> pd.DataFrame:
    names = ("train_acc", "test_acc", "test_loss")
    frames = [
        pd.DataFrame({"config_id": ids, "step": step, "metric": name, "value": values[j].numpy()})
        for step, ids, values in sw.eval_rows
        for j, name in enumerate(names)
    ]
    return pd.concat(frames, ignore_index=True)


def _summary(sw: _Sweep, curves: pd.DataFrame, points: pd.DataFrame) -> pd.DataFrame:
    target = sw.cfg.target_acc
    test = curves[curves["metric"] == "test_acc"]
    reached = test[test["value"] >= target].groupby("config_id")["step"].min()
    last = curves[curves["metric"].isin(["train_acc", "test_acc"])].sort_values("step")
    final = last.groupby(["config_id", "metric"])["value"].last().unstack()
    diverged = pd.Series(sw.diverged_at, dtype="Int64").reindex(points["config_id"])
    summary = points.copy()
    summary["final_test_acc"] = final["test_acc"].reindex(points["config_id"]).to_numpy()
    summary["final_train_acc"] = final["train_acc"].reindex(points["config_id"]).to_numpy()
    summary.loc[diverged.notna().to_numpy(), ["final_test_acc", "final_train_acc"]] = math.nan
    summary["steps_to_target"] = reached.reindex(points["config_id"]).astype("Int64").array
    summary["diverged_at"] = diverged.array
    summary["status"] = [
        f"diverged at step {d}" if pd.notna(d) else f"trained {sw.cfg.base.steps} steps" for d in diverged
    ]
    return summary


def _frames(sw: _Sweep) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long curves (a diverged config has no record from its divergence step on) and the summary."""
    points = _point_columns(sw.cfg)
    long = pd.concat([_loss_frame(sw), _eval_frame(sw)], ignore_index=True)
    curves = points.merge(long, on="config_id").sort_values(["config_id", "step"], kind="stable")
    curves = curves.reset_index(drop=True).astype({"step": "int64", "value": "float64"})
    return curves, _summary(sw, curves, points)
