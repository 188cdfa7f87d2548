"""Why BN Works: what the tabs share: the net, the data, side-effect-free probes, and "did it train?".

Every training run is :func:`bn_core.train.train` on the real digits data, with Ioffe &
Szegedy's Fig. 1 net (arXiv:1502.03167) changed in depth, width, activation or step
size. The probes of the ICS and landscape tabs evaluate the loss with
:func:`torch.func.functional_call` on detached parameter copies and cloned buffers, so a
probe never moves the trained model's running statistics.

:class:`NetOutcome` is one trained net's fate as the verdicts see it. Every verdict on
the page first asks whether the nets it compares trained at all (:func:`untrained`):
at a learning rate where every net sits at chance, "as well as BN" would be a claim
about noise.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

from bn_core.data import DIGITS, DataSplit, load_dataset
from bn_core.models import MLP, MLPConfig, build_mlp
from bn_core.progress import sub_progress
from bn_core.train import TrainConfig, TrainResult, fig1_config
from bn_core.verdict import Verdict, num, pct, ratio

__all__ = [
    "BN",
    "NO_NORM",
    "NOISY_BN",
    "DIGITS",
    "CHANCE_ACC",
    "TRAINED_ACC",
    "NetOutcome",
    "outcome",
    "untrained",
    "LEAD",
    "leads",
    "net_config",
    "digits_split",
    "probe_params",
    "loss_and_grads",
    "flat_norm",
    "weight_names",
    "initial_model",
    "sub_progress",
    "finite_rows",
    "thin_steps",
]

# The series names, as every page names these methods (ui.charts.METHOD_COLORS).
BN, NO_NORM, NOISY_BN = "BN", "no norm", "noisy BN"
Norm = Literal["batch", "none"]

CHANCE_ACC = 0.1  # ten digit classes: a net that guesses scores 10 %
# A net "trained" once it classifies half of the test digits (5× chance). A net stuck on
# the sigmoid plateau, or blown up by a huge step, sits at 10–25 %; every net here that
# escapes the plateau passes 80 % within 200 steps, so 50 % separates the two cleanly.
TRAINED_ACC = 0.5
# One net "leads" another when its final test accuracy (as printed) is at least 3 % higher:
# a net's own final accuracy moves by 1–3 % from seed to seed here (450 test digits).
LEAD = 1.03


@dataclass(frozen=True)
class NetOutcome:
    """One trained net's fate: its final accuracies and whether it diverged."""

    variant: str  # "BN", "no norm", "noisy BN"
    final_test_acc: float  # after the last step (a fraction); NaN when the run diverged
    final_train_acc: float  # on the engine's fixed training subset; NaN when diverged
    diverged_at: int | None = None  # the first step whose loss was NaN or infinite
    steps_run: int = 0  # updates applied

    @property
    def trained(self) -> bool:
        """True when the net finished and beats :data:`TRAINED_ACC` on the test set."""
        return self.diverged_at is None and self.final_test_acc >= TRAINED_ACC

    @property
    def status(self) -> str:
        """ "diverged at step k" or "trained N steps" (the engine's wording)."""
        return (
            f"diverged at step {self.diverged_at}"
            if self.diverged_at is not None
            else f"trained {self.steps_run} steps"
        )

    @property
    def acc_text(self) -> str:
        """The final test accuracy, or "diverged at step k" in its place."""
        return self.status if self.diverged_at is not None else pct(self.final_test_acc)

    @property
    def divergence_note(self) -> str | None:
        """The sentence a diverged run shows in place, or None."""
        if self.diverged_at is None:
            return None
        return (
            f"**{self.variant}** diverged at step {self.diverged_at}: its loss became NaN or infinite; "
            "its records stop there."
        )


def outcome(result: TrainResult, variant: str) -> NetOutcome:
    """The :class:`NetOutcome` of one engine run."""
    curves = result.curves
    last = curves[(curves["step"] == result.steps_run) & (curves["metric"] == "train_acc")]["value"]
    train_acc = float(last.iloc[-1]) if len(last) and result.diverged_at is None else math.nan
    return NetOutcome(variant, result.final_test_acc, train_acc, result.diverged_at, result.steps_run)


def untrained(nets: Sequence[NetOutcome], lr: float) -> Verdict | None:
    """The "no net trained" verdict when none of ``nets`` trained, else None (the comparison may go on)."""
    if any(n.trained for n in nets):
        return None
    accs = ", ".join(f"{n.variant} {n.acc_text}" for n in nets)
    return Verdict(
        False,
        f"**No net trained at this learning rate** (η = {num(lr)}): final test accuracy {accs}, against "
        f"{pct(CHANCE_ACC, 0)} for guessing. A comparison between nets that learned nothing says nothing; "
        "lower the learning rate.",
    )


def leads(a: NetOutcome, b: NetOutcome) -> bool:
    """True when ``a`` trained and ``b`` did not, or both trained and a's accuracy ÷ b's (as printed) ≥ LEAD."""
    if not a.trained:
        return False
    if not b.trained:
        return True
    q, _ = ratio(100 * a.final_test_acc, 100 * b.final_test_acc, 1)
    return q >= LEAD


def net_config(
    norm: Norm,
    *,
    lr: float,
    steps: int,
    seed: int,
    depth: int = 3,
    activation: str = "sigmoid",
    width: int = 100,
    backend: str = "manual",
    variant: str | None = None,
    **overrides: object,
) -> TrainConfig:
    """Ioffe & Szegedy's Fig. 1 net on digits (SGD, batch 60), with depth / width / activation / lr changed."""
    base = fig1_config(norm, seed=seed, steps=steps, lr=lr, variant=variant)
    model = replace(base.model, depth=depth, width=width, activation=activation, backend=backend)
    assert isinstance(model, MLPConfig)
    return replace(base, model=model, **overrides)


def digits_split() -> DataSplit:
    """The digits split every experiment on this page trains on."""
    return load_dataset(DIGITS)


def probe_params(model: nn.Module) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
    """Detached copies of the parameters and clones of the buffers, for side-effect-free probes."""
    params = {name: p.detach().clone() for name, p in model.named_parameters()}
    buffers = {name: b.clone() for name, b in model.named_buffers()}
    return params, buffers


def loss_and_grads(
    model: nn.Module,
    params: Mapping[str, Tensor],
    buffers: Mapping[str, Tensor],
    x: Tensor,
    y: Tensor,
    wrt: Iterable[str] | None = None,
) -> tuple[Tensor, dict[str, Tensor]]:
    """Cross-entropy of ``model`` with ``params`` on ``(x, y)`` in train mode, and its gradients.

    The buffers passed in absorb any running-statistic update (pass clones); the model's
    own parameters and buffers are not touched. ``wrt`` limits the gradients to some
    parameter names (default: all).
    """
    names = list(params) if wrt is None else list(wrt)
    leaves = {n: p.detach().requires_grad_(n in names) for n, p in params.items()}
    was_training = model.training
    model.train()
    try:
        logits = functional_call(model, ({**leaves}, dict(buffers)), (x,))
    finally:
        model.train(was_training)
    loss = F.cross_entropy(logits, y)
    grads = torch.autograd.grad(loss, [leaves[n] for n in names])
    return loss.detach(), dict(zip(names, grads, strict=True))


def flat_norm(tensors: Iterable[Tensor]) -> Tensor:
    """‖(t₁, t₂, …)‖₂ of several tensors seen as one flat vector."""
    return torch.sqrt(sum((t.double() ** 2).sum() for t in tensors))


def weight_names(model: nn.Module) -> list[str]:
    """Parameter names of each linear weight, layers 1 … depth then the head (layer depth + 1)."""
    blocks = getattr(model, "blocks", [])
    return [f"blocks.{i}.linear.weight" for i in range(len(blocks))] + ["head.weight"]


def initial_model(cfg: TrainConfig, split: DataSplit) -> MLP:
    """The model ``train(cfg, data=split)`` starts from (same builder, same seed), in train mode, on the CPU."""
    model_cfg = cfg.model
    assert isinstance(model_cfg, MLPConfig)
    return build_mlp(replace(model_cfg, in_features=split.n_features, n_classes=split.n_classes), seed=cfg.seed)


def finite_rows(frame: pd.DataFrame, *columns: str) -> pd.DataFrame:
    """Rows whose ``columns`` (default: ``value``) are finite: JSON has no NaN or ∞, and a diverged run has them."""
    cols = columns or ("value",)
    ok = np.all([np.isfinite(frame[c].to_numpy(dtype=float)) for c in cols], axis=0)
    return frame[ok].reset_index(drop=True)


def thin_steps(frame: pd.DataFrame, points: int = 120) -> pd.DataFrame:
    """Every k-th step, so a chart ships ~``points`` points per line (the first and last steps are kept)."""
    if frame.empty:
        return frame
    last = int(frame["step"].max())
    k = max(1, last // points)
    keep = (frame["step"] % k == 0) | (frame["step"] == last) | (frame["step"] == 1)
    return frame[keep].reset_index(drop=True)
