"""The stacked training engine: K MLP configurations trained at once, as one model.

One engine serves every sweep in the app: the Training page's grids (learning rate,
init scale, depth, through :mod:`bn_core.sweep`) and the Batch-Size sweep (BN, group
norm, layer norm, no norm, Ghost BN and Batch Renorm, with and without train-mode
testing, through :mod:`bn_core.experiments.batch_size`). :func:`bn_core.train.train`
stays the readable single-run loop; configuration i of a stack is exactly that loop run
alone on :func:`point_train_config` (cfg, i), to float rounding.

How K configurations become one model (:mod:`bn_core.engine.stack`): the K weight
matrices of a layer are one ``(K, in, out)`` tensor, every activation is one
``(K, B, F)`` tensor, and each step runs one ``torch.baddbmm`` per layer for all K, with
a hand-written forward and backward (no autograd graph) and hand-written optimizers
with a per-network learning rate (:mod:`bn_core.engine.optim`). Networks that share a
normalization sit side by side, and each such slice of the K axis is normalized in
place by one kernel of :mod:`bn_core.engine.norms`. Nothing couples two networks, so
a display switch that adds an evaluation (train-mode testing) or another network
leaves every other network's numbers bitwise unchanged on the CPU.

    >>> from bn_core.engine import NormSpec, StackConfig, StackPoint, train_stack
    >>> cfg = StackConfig(base, points=(StackPoint(lr=0.1), StackPoint(lr=0.1, norm=NormSpec("group", groups=8))))
    >>> result = train_stack(cfg)  # result.losses (steps, K), result.evals, result.diverged_at

Not supported (use :func:`bn_core.train.train`): the CNN, layer statistics, ``on_step``
hooks, different batch sizes, step counts, architectures or optimizers within one stack,
returning the trained models.
"""

from bn_core.engine.config import (
    NORM_KINDS,
    NormSpec,
    StackConfig,
    StackPoint,
    StackResult,
    norm_module,
    point_train_config,
)
from bn_core.engine.loop import train_stack, window_rows

__all__ = [
    "NORM_KINDS",
    "NormSpec",
    "StackPoint",
    "StackConfig",
    "StackResult",
    "train_stack",
    "point_train_config",
    "norm_module",
    "window_rows",
]
