"""Section 3 of Training Comparison: pre-binned histograms of every hidden layer at the snapshot steps.

The probe batch's layer inputs (``pre``) and outputs (``act``) at every snapshot, binned
here (30 bins) so a chart ships a few hundred rows, not the probe's hundred thousand values.

Source: Ioffe & Szegedy 2015, arXiv:1502.03167 (Fig. 1 b, c; §3.1 sigmoid saturation).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

__all__ = ["HIST_BINS", "hist_frame"]

HIST_BINS = 30
Snapshots = dict[int, dict[int, tuple[np.ndarray, np.ndarray]]]  # step -> layer -> (pre, act) on the probe


def _counts(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Histograms of every row of ``values`` (T, n) over one set of edges: counts (T, bins), edges (bins + 1,).

    Same edges and counts as :func:`bn_core.binning.binned` (the joint finite range, ±0.5 when it is
    constant), vectorized over the rows: one DataFrame per series cost more than the arithmetic here.
    """
    finite = np.isfinite(values)
    lo, hi = (values[finite].min(), values[finite].max()) if finite.any() else (0.0, 0.0)
    if hi - lo <= 1e-12 * max(1.0, abs(lo)):
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, HIST_BINS + 1)
    which = np.clip(np.searchsorted(edges, values, side="right") - 1, 0, HIST_BINS - 1)  # last bin is closed
    which = np.where(finite, which + HIST_BINS * np.arange(len(values))[:, None], -1)  # (T, n) flat bin ids
    counts = np.bincount(which[finite], minlength=HIST_BINS * len(values)).reshape(len(values), HIST_BINS)
    return counts, edges


def _hist_block(variant: str, layer: int, q: int, by_step: Snapshots) -> pd.DataFrame:
    """Every snapshot of one (variant, layer, quantity) over one set of edges."""
    steps = [step for step, taps in by_step.items() if layer in taps]
    values = np.stack([by_step[step][layer][q].reshape(-1) for step in steps]).astype(np.float64)  # (T, n)
    counts, edges = _counts(values)  # (T, bins)
    T = len(steps)
    return pd.DataFrame(
        {
            "step": np.repeat(np.asarray(steps, dtype=np.int64), HIST_BINS),
            "variant": variant,
            "layer": layer,
            "quantity": ("pre", "act")[q],
            "bin_start": np.tile(edges[:-1], T),
            "bin_end": np.tile(edges[1:], T),
            "count": counts.reshape(-1),
            "share": (counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)).reshape(-1),
        }
    )


def hist_frame(snaps: dict[str, Snapshots], layers: Sequence[int]) -> pd.DataFrame:
    """Pre-binned histograms of the layer input (``pre``) and output (``act``) at every snapshot.

    Columns ``step, variant, layer, quantity, bin_start, bin_end, count, share``. One set of
    edges per (variant, layer, quantity), shared by every step, so a layer's drift is
    visible; each variant gets its own range, since BN and no-norm layer inputs can differ
    by orders of magnitude.
    """
    frames = [
        _hist_block(variant, layer, q, by_step)
        for variant, by_step in snaps.items()
        for layer in layers
        for q in (0, 1)
        if any(layer in taps for taps in by_step.values())
    ]
    return pd.concat(frames, ignore_index=True)
