"""Model builders for the training experiments: an MLP of any depth and a small CNN for digits.

Both models are a stack of :class:`Block` s followed by a linear ``head``. A block is
``linear → norm → act`` (BN *before* the nonlinearity, as in Ioffe & Szegedy 2015,
§3.2) or ``linear → act → norm`` (*after*, a common variant). ``block.linear`` is the
block's affine map: ``nn.Linear`` in the MLP, ``nn.Conv2d`` in the CNN.

**Tapping layers.** ``model(x, taps={})`` fills the dict with one :class:`Tap` per
hidden layer, keyed ``1 … depth``: ``tap.pre`` is the input to the nonlinearity (the
"layer input" whose distribution the paper's Fig. 1(b, c) tracks: the BN output when
BN comes before the activation, the linear output otherwise) and ``tap.act`` is the
nonlinearity's output. ``model(x)`` (``taps=None``) costs nothing extra. The tapped
tensors are part of the autograd graph; detach them if you keep them.

**Initialization.** Every ``Linear`` / ``Conv2d`` is initialized from one explicit
``torch.Generator(seed)``, in a fixed order (blocks first to last, then the head:
weight, then bias), with PyTorch's default law U(−1/√fan_in, 1/√fan_in), and the
weight multiplied by ``init_scale``. Norm layers draw nothing (γ = 1, β = 0). So the
same seed and the same layer sizes give **identical weights for every shared layer**
whatever the norm kind, and the global RNG is never touched. The linear bias is kept
under BN too (BN cancels it; the paper drops it) so that BN and no-BN nets share it.

Custom norms: pass ``norm_factory(C) -> nn.Module`` (Ghost BN, Batch Renorm, a noisy
BN, ``SyncBatchNorm`` …); it replaces :func:`bn_core.layers.make_norm` in every block.

Sources: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1 net: 3 hidden layers × 100
sigmoid units); He et al. 2015, arXiv:1502.01852 (default init law); Wu & He 2018,
arXiv:1803.08494 (group norm).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn

from bn_core.layers import NormKind, make_norm

__all__ = [
    "ACTIVATIONS",
    "PLACEMENTS",
    "MLPConfig",
    "CNNConfig",
    "ModelConfig",
    "Tap",
    "Block",
    "MLP",
    "SmallCNN",
    "build_mlp",
    "build_cnn",
    "build_model",
    "NormFactory",
]

ACTIVATIONS = ("sigmoid", "tanh", "relu")
PLACEMENTS = ("before", "after")
Activation = Literal["sigmoid", "tanh", "relu"]
Placement = Literal["before", "after"]
NormFactory = Callable[[int], nn.Module]
MAX_DEPTH = 10


@dataclass(frozen=True)
class MLPConfig:
    """A fully connected net: ``depth`` hidden blocks of ``width`` units, then a linear head."""

    in_features: int = 64  # D, input width (train.py fills it from the data)
    n_classes: int = 10  # logits out (train.py fills it from the data)
    depth: int = 3  # hidden layers, 1 … 10 (the paper's Fig. 1 net has 3)
    width: int = 100  # units per hidden layer (Fig. 1: 100)
    activation: Activation = "sigmoid"  # sigmoid, tanh or relu (Fig. 1: sigmoid)
    norm: NormKind = "batch"  # batch, layer, group, instance (CNN only) or none
    backend: Literal["manual", "torch"] = "manual"  # hand-written layers (bn_core.layers) or torch.nn
    placement: Placement = "before"  # norm before the nonlinearity (paper) or after it
    init_scale: float = 1.0  # multiplies every default-initialized weight (not the biases)
    bn_momentum: float | None = 0.1  # running-stat EMA weight of the newest batch (PyTorch convention)
    eps: float = 1e-5  # added to var_B before the square root


@dataclass(frozen=True)
class CNNConfig:
    """A small conv net for 8×8 digits: two conv blocks, global average pool, linear head.

    conv 3×3 ``in_channels → channels[0]`` (stride 1) → norm → act → conv 3×3
    ``channels[0] → channels[1]`` (stride 2) → norm → act → mean over H, W → linear.
    """

    image_shape: tuple[int, int, int] = (1, 8, 8)  # (C, H, W) of one input; flat (N, C·H·W) input is reshaped
    n_classes: int = 10  # logits out (train.py fills it from the data)
    channels: tuple[int, int] = (16, 32)  # output channels of the two conv blocks
    activation: Activation = "relu"  # sigmoid, tanh or relu
    norm: NormKind = "batch"  # per-channel BatchNorm2d for "batch"; layer/group/instance/none too
    backend: Literal["manual", "torch"] = "manual"  # hand-written layers or torch.nn
    placement: Placement = "before"  # norm before or after the nonlinearity
    init_scale: float = 1.0  # multiplies every default-initialized weight (not the biases)
    bn_momentum: float | None = 0.1  # running-stat EMA weight of the newest batch
    eps: float = 1e-5  # added to var_B before the square root


ModelConfig = MLPConfig | CNNConfig


class Tap(NamedTuple):
    """What one hidden layer computed: shapes ``(N, width)`` or ``(N, C, H, W)``."""

    pre: Tensor  # input to the nonlinearity (Ioffe Fig. 1 "layer input")
    act: Tensor  # output of the nonlinearity


def _activation(name: Activation) -> nn.Module:
    modules = {"sigmoid": nn.Sigmoid, "tanh": nn.Tanh, "relu": nn.ReLU}
    if name not in modules:
        raise ValueError(f"Unknown activation {name!r}; choose one of {', '.join(ACTIVATIONS)}.")
    return modules[name]()


class Block(nn.Module):
    """One hidden layer: ``linear → norm → act`` (placement "before") or ``linear → act → norm``."""

    def __init__(self, linear: nn.Module, norm: nn.Module, act: nn.Module, placement: Placement) -> None:
        super().__init__()
        if placement not in PLACEMENTS:
            raise ValueError(f"Unknown placement {placement!r}; choose 'before' or 'after'.")
        self.linear = linear
        self.norm = norm
        self.act = act
        self.placement = placement

    def forward_tapped(self, x: Tensor) -> tuple[Tensor, Tap]:
        """The block's output and its :class:`Tap`."""
        z = self.linear(x)
        if self.placement == "before":
            pre = self.norm(z)
            a = self.act(pre)
            return a, Tap(pre=pre, act=a)
        a = self.act(z)
        return self.norm(a), Tap(pre=z, act=a)

    def forward(self, x: Tensor) -> Tensor:
        if self.placement == "before":
            return self.act(self.norm(self.linear(x)))
        return self.norm(self.act(self.linear(x)))

    def extra_repr(self) -> str:
        return f"placement={self.placement}"


def _run_blocks(blocks: nn.ModuleList, h: Tensor, taps: dict[int, Tap] | None) -> Tensor:
    if taps is None:
        for block in blocks:
            h = block(h)
        return h
    for index, block in enumerate(blocks, start=1):
        h, taps[index] = block.forward_tapped(h)
    return h


class MLP(nn.Module):
    """``depth`` × :class:`Block` then a linear head. Input ``(N, D)``, output logits ``(N, n_classes)``."""

    def __init__(self, config: MLPConfig, blocks: list[Block], head: nn.Linear) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def forward(self, x: Tensor, taps: dict[int, Tap] | None = None) -> Tensor:
        """Logits ``(N, n_classes)``; fills ``taps[1 … depth]`` when a dict is given."""
        return self.head(_run_blocks(self.blocks, x.flatten(1), taps))


class SmallCNN(nn.Module):
    """Two conv :class:`Block` s, global average pool, linear head. Input ``(N, C·H·W)`` or ``(N, C, H, W)``."""

    def __init__(self, config: CNNConfig, blocks: list[Block], head: nn.Linear) -> None:
        super().__init__()
        self.config = config
        self.blocks = nn.ModuleList(blocks)
        self.head = head

    def forward(self, x: Tensor, taps: dict[int, Tap] | None = None) -> Tensor:
        """Logits ``(N, n_classes)``; fills ``taps[1, 2]`` (each ``(N, C, H, W)``) when a dict is given."""
        h = x.view(x.shape[0], *self.config.image_shape) if x.dim() == 2 else x  # (N, C, H, W)
        h = _run_blocks(self.blocks, h, taps)  # (N, C2, H', W')
        return self.head(h.mean(dim=(2, 3)))  # global average pool → (N, C2) → (N, n_classes)


def _blank(cls: type[nn.Module], *args, **kwargs) -> nn.Module:
    """``cls(*args, **kwargs)`` for a layer whose parameters :func:`_init_affine_` overwrites next.

    Its default init draws from the global RNG, whose state is restored afterwards, so
    building a model never moves the global RNG. Not ``nn.utils.skip_init``: its meta-device
    round trip imports sympy, 0.35 s of one core at a fresh server's first model.
    """
    with torch.random.fork_rng(devices=[]):
        return cls(*args, **kwargs)


def _init_affine_(layer: nn.Linear | nn.Conv2d, gen: torch.Generator, init_scale: float) -> None:
    """PyTorch's default law U(−1/√fan_in, 1/√fan_in) for weight and bias, drawn from ``gen``."""
    fan_in = layer.weight[0].numel()  # in_features, or in_channels·kh·kw
    bound = 1.0 / math.sqrt(fan_in)
    with torch.no_grad():
        layer.weight.uniform_(-bound, bound, generator=gen).mul_(init_scale)
        if layer.bias is not None:
            layer.bias.uniform_(-bound, bound, generator=gen)


def _norm(
    kind: NormKind, C: int, backend: str, spatial: bool, cfg: ModelConfig, factory: NormFactory | None
) -> nn.Module:
    if factory is not None:
        return factory(C)
    return make_norm(kind, C, backend, spatial=spatial, momentum=cfg.bn_momentum, eps=cfg.eps)


def _check_common(cfg: ModelConfig) -> None:
    if cfg.activation not in ACTIVATIONS:
        raise ValueError(f"Unknown activation {cfg.activation!r}; choose one of {', '.join(ACTIVATIONS)}.")
    if cfg.placement not in PLACEMENTS:
        raise ValueError(f"Unknown placement {cfg.placement!r}; choose 'before' or 'after'.")
    if not (cfg.init_scale > 0 and math.isfinite(cfg.init_scale)):
        raise ValueError(f"init_scale must be a positive number, got {cfg.init_scale}.")
    if cfg.n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {cfg.n_classes}.")


def build_mlp(cfg: MLPConfig, seed: int = 0, norm_factory: NormFactory | None = None) -> MLP:
    """Build the MLP ``cfg`` describes, initialized from ``torch.Generator().manual_seed(seed)``.

    Returns:
        An :class:`MLP` in train mode, float32, on the CPU.

    Raises:
        ValueError: depth outside 1 … 10, width < 1, or an unknown activation / norm / placement.
    """
    _check_common(cfg)
    if not 1 <= cfg.depth <= MAX_DEPTH or cfg.width < 1 or cfg.in_features < 1:
        raise ValueError(f"Need 1 ≤ depth ≤ {MAX_DEPTH}, width ≥ 1 and in_features ≥ 1; got {cfg}.")
    gen = torch.Generator().manual_seed(seed)
    blocks, fan_in = [], cfg.in_features
    for _ in range(cfg.depth):
        linear = _blank(nn.Linear, fan_in, cfg.width)
        _init_affine_(linear, gen, cfg.init_scale)
        norm = _norm(cfg.norm, cfg.width, cfg.backend, False, cfg, norm_factory)
        blocks.append(Block(linear, norm, _activation(cfg.activation), cfg.placement))
        fan_in = cfg.width
    head = _blank(nn.Linear, cfg.width, cfg.n_classes)
    _init_affine_(head, gen, cfg.init_scale)
    return MLP(cfg, blocks, head)


def build_cnn(cfg: CNNConfig, seed: int = 0, norm_factory: NormFactory | None = None) -> SmallCNN:
    """Build the small CNN ``cfg`` describes, initialized from ``torch.Generator().manual_seed(seed)``.

    ``norm_factory(C)`` receives the channel count and must accept ``(N, C, H, W)`` input.

    Returns:
        A :class:`SmallCNN` in train mode, float32, on the CPU.
    """
    _check_common(cfg)
    gen = torch.Generator().manual_seed(seed)
    c_in, (c1, c2) = cfg.image_shape[0], cfg.channels
    blocks = []
    for c_from, c_to, stride in ((c_in, c1, 1), (c1, c2, 2)):
        conv = _blank(nn.Conv2d, c_from, c_to, 3, stride=stride, padding=1)
        _init_affine_(conv, gen, cfg.init_scale)
        norm = _norm(cfg.norm, c_to, cfg.backend, True, cfg, norm_factory)
        blocks.append(Block(conv, norm, _activation(cfg.activation), cfg.placement))
    head = _blank(nn.Linear, c2, cfg.n_classes)
    _init_affine_(head, gen, cfg.init_scale)
    return SmallCNN(cfg, blocks, head)


def build_model(cfg: ModelConfig, seed: int = 0, norm_factory: NormFactory | None = None) -> MLP | SmallCNN:
    """:func:`build_mlp` or :func:`build_cnn`, chosen by the config's type."""
    if isinstance(cfg, MLPConfig):
        return build_mlp(cfg, seed, norm_factory)
    if isinstance(cfg, CNNConfig):
        return build_cnn(cfg, seed, norm_factory)
    raise TypeError(f"Expected MLPConfig or CNNConfig, got {type(cfg).__name__}.")
