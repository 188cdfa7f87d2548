"""Train vs Inference, section 4: fold every eval-mode BN into its Linear/Conv, check the outputs, time both.

The trained MLP (or a small CNN trained here by :func:`bn_core.train.train`) is folded by
:func:`bn_core.folding.fold_bn`, checked in float32 and float64 on test images and on random
inputs, and timed against the same weights with the hand-written BN and with torch's BN,
interleaved (:func:`bn_core.folding.interleaved_times`).

Sources: Jacob et al. 2018, arXiv:1712.05877 (§3.2, folding BN for deployment); Ioffe &
Szegedy 2015, arXiv:1502.03167 (§3.1, inference is a linear transform).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import pandas as pd
import torch
from torch import Tensor, nn

from bn_core.data import DataSplit
from bn_core.device import pick_device
from bn_core.experiments.inference.base import DIGITS, MIN_TRAIN_BATCH, digits, model_config, on_device
from bn_core.experiments.inference.run import InferenceRun, trained_model
from bn_core.folding import fold_bn, interleaved_times
from bn_core.models import CNNConfig, MLPConfig, build_model
from bn_core.precise_bn import bn_layers
from bn_core.progress import Progress
from bn_core.train import TrainConfig, evaluate, stream_seed, train
from bn_core.verdict import Verdict, num, pct, ratio

__all__ = ["FOLD_ARCHS", "FOLD_BATCHES", "FOLD_TOL", "FOLD_FASTER", "FoldResult", "FoldVerdicts", "fold_lab",
           "fold_verdicts"]  # fmt: skip

FOLD_ARCHS = ("mlp", "cnn")
FOLD_CNN_STEPS = 150  # updates of the small CNN trained for the conv case
FOLD_BATCHES = (1, 450)  # timed batch sizes: one request, the whole test set
FOLD_TOL = 1e-6  # float32: |folded − unfolded| ≤ FOLD_TOL · max(1, max|output|) (24-bit mantissa)
FOLD64_TOL = 1e-12  # float64: the same check, 53-bit mantissa
# "Faster" needs a median at least 5 % lower: interleaved medians of sub-millisecond calls on a
# shared server scatter by a few percent, so a smaller difference is "about as fast".
FOLD_FASTER = 1.05
TORCH_BN, MANUAL_BN, FOLDED = "torch nn.BatchNorm (eval)", "hand-written BN (eval)", "folded"


@dataclass(frozen=True, eq=False)
class FoldResult:
    arch: str  # "mlp" or "cnn"
    checks: pd.DataFrame  # dtype, inputs, max_abs_diff, max_abs_output, tolerance, ok, same_predictions
    timing: pd.DataFrame  # batch_size, variant, median_ms
    n_folded: int  # BN layers folded away
    acc_unfolded: float  # test accuracy of the network with BN (eval mode)
    acc_folded: float  # test accuracy of the folded network


@dataclass(frozen=True)
class FoldVerdicts:
    exact: Verdict  # holds: every check within tolerance and every prediction the same
    speed: Verdict  # holds: the folded net is faster than torch's BN for one image and for the test set


def _fold_models(run: InferenceRun, arch: str, split: DataSplit, progress: Progress | None) -> tuple:
    """The trained network with hand-written BN, the same weights in torch's BN, and its model config."""
    if arch == "mlp":
        return trained_model(run), trained_model(run, "torch"), model_config(run.config)
    cnn = CNNConfig(bn_momentum=run.config.momentum)
    tcfg = TrainConfig(
        data=DIGITS, model=cnn, optimizer="momentum", lr=0.05,
        batch_size=max(run.config.batch_size, MIN_TRAIN_BATCH), steps=FOLD_CNN_STEPS, eval_every=FOLD_CNN_STEPS,
        seed=run.config.seed, record_layers=False, record_grads=False, variant="CNN",
    )  # fmt: skip
    model = train(tcfg, data=split, progress=progress).model.to(pick_device()).eval()
    twin = build_model(replace(cnn, backend="torch"), seed=run.config.seed)
    twin.load_state_dict(model.state_dict())
    return model, on_device(model, twin).eval(), cnn


def _check_rows(model: nn.Module, model_cfg: MLPConfig | CNNConfig, x: Tensor, name: str, dtype) -> tuple:
    ref = build_model(model_cfg).to(dtype)
    ref.load_state_dict(model.state_dict())
    ref.eval()
    with torch.no_grad():
        y_ref, y_fold = ref(x.to(dtype)), fold_bn(ref)(x.to(dtype))
    diff, scale = float((y_ref - y_fold).abs().max()), float(y_ref.abs().max())
    tol = (FOLD_TOL if dtype == torch.float32 else FOLD64_TOL) * max(1.0, scale)
    same = float((y_ref.argmax(1) == y_fold.argmax(1)).double().mean())
    return (str(dtype).removeprefix("torch."), name, diff, scale, tol, diff <= tol, same)


def _fold_checks(model: nn.Module, model_cfg: MLPConfig | CNNConfig, split: DataSplit, seed: int) -> pd.DataFrame:
    gen = torch.Generator().manual_seed(stream_seed(seed, 39))
    inputs = {"test images": split.x_test, "random N(0, 1)": torch.randn(split.x_test.shape, generator=gen)}
    rows = [_check_rows(model, model_cfg, x, name, dtype) for dtype in (torch.float32, torch.float64)
            for name, x in inputs.items()]  # fmt: skip
    columns = ["dtype", "inputs", "max_abs_diff", "max_abs_output", "tolerance", "ok", "same_predictions"]
    return pd.DataFrame(rows, columns=columns)


def _synced(y: Tensor) -> Tensor:
    """Wait for the device: CUDA kernels run asynchronously, and a timer must see them finish."""
    if y.is_cuda:
        torch.cuda.synchronize(y.device)
    return y


def _fold_timing(models: dict[str, nn.Module], x: Tensor, rounds: int) -> pd.DataFrame:
    timing = []
    for n in FOLD_BATCHES:
        inputs = {name: on_device(m, x[:n]) for name, m in models.items()}
        fns = {name: (lambda m=m, xb=inputs[name]: _synced(m(xb))) for name, m in models.items()}
        timing += [(n, name, med * 1e3) for name, (med, _) in interleaved_times(fns, rounds).items()]
    return pd.DataFrame(timing, columns=["batch_size", "variant", "median_ms"])


def fold_lab(
    run: InferenceRun,
    arch: Literal["mlp", "cnn"] = "mlp",
    rounds: int = 40,
    data: DataSplit | None = None,
    progress: Progress | None = None,
) -> FoldResult:
    """Fold every BN of the trained MLP (or of a small CNN trained here), check the outputs, time both."""
    if arch not in FOLD_ARCHS:
        raise ValueError(f"Unknown architecture {arch!r}; choose one of {', '.join(FOLD_ARCHS)}.")
    split = digits(data)
    manual, torch_bn, model_cfg = _fold_models(run, arch, split, progress)
    folded = fold_bn(manual)
    timing = _fold_timing({MANUAL_BN: manual, TORCH_BN: torch_bn, FOLDED: folded}, split.x_test, rounds)
    return FoldResult(
        arch=arch,
        checks=_fold_checks(manual, model_cfg, split, run.config.seed),
        timing=timing,
        n_folded=len(bn_layers(manual)),
        acc_unfolded=evaluate(manual, split.x_test, split.y_test).accuracy,
        acc_folded=evaluate(folded, split.x_test, split.y_test).accuracy,
    )


def _exact_verdict(r: FoldResult) -> Verdict:
    f32, f64 = r.checks[r.checks["dtype"] == "float32"], r.checks[r.checks["dtype"] == "float64"]
    ok, same = bool(r.checks["ok"].all()), float(r.checks["same_predictions"].min())
    text = (
        f"{r.n_folded} BN layers folded away. Largest |folded − unfolded| output: **{num(f32['max_abs_diff'].max())}** "
        f"in float32 (outputs up to {num(f32['max_abs_output'].max())}; tolerance {num(FOLD_TOL)} × max(1, |output|)), "
        f"{num(f64['max_abs_diff'].max())} in float64; identical predictions on {pct(same)} of inputs; test "
        f"accuracy {pct(r.acc_unfolded)} → {pct(r.acc_folded)}."
    )
    if ok and same == 1.0:
        return Verdict(True, text + " The folded net computes the same function.")
    return Verdict(False, text + " **Outside the tolerance**: the folded net does not compute the same function.")


def _speed_words(r: FoldResult, n: int) -> tuple[bool, str]:
    t = r.timing[r.timing["batch_size"] == n].set_index("variant")["median_ms"]
    q, text = ratio(t[TORCH_BN], t[FOLDED], unit="ms")
    what = "one image" if n == 1 else f"{n} images"
    if q >= FOLD_FASTER:
        return True, f"**{text.replace('×', '× faster', 1)}** than torch's BN for {what}"
    verb = "slower than" if q <= 1 / FOLD_FASTER else "about as fast as"
    return False, f"{verb} torch's BN for {what}: {text}"


def fold_verdicts(r: FoldResult) -> FoldVerdicts:
    """The folding check and the speed sentence; every ratio is the quotient of the two medians printed."""
    parts = [_speed_words(r, n) for n in FOLD_BATCHES]
    speed = Verdict(
        all(fast for fast, _ in parts),
        "Measured on this server, interleaved, medians (torch's BN vs folded): the folded net is "
        + " and ".join(words for _, words in parts)
        + ".",
    )
    return FoldVerdicts(exact=_exact_verdict(r), speed=speed)
