"""Data for the lab: seeded synthetic batches, and the user's own CSV, validated.

Everything is seeded through an explicit ``np.random.default_rng(seed)``; nothing
here touches global random state, so cached results are reproducible.

The CSV parser never raises on bad input. It returns a :class:`ParsedCSV` whose
``issues`` say, in plain words, what was wrong and what was done about it, so the
page can show them and keep working.

The datasets section (bottom) gives the training engine its data: scikit-learn's
bundled handwritten digits (offline, read by :mod:`bn_core.digits`) and seeded
synthetic sets, split once into train and test, returned as CPU tensors in a
:class:`DataSplit`.
"""

from __future__ import annotations

import csv
import functools
import io
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
import torch

from bn_core.digits import digits_arrays

__all__ = [
    "DISTRIBUTIONS",
    "synthetic_batch",
    "DataIssue",
    "ParsedCSV",
    "parse_csv",
    "MAX_UPLOAD_BYTES",
    "MAX_ROWS",
    "MAX_COLS",
    "DATASETS",
    "DataConfig",
    "DataSplit",
    "load_dataset",
    "train_size",
    "ill_scale_factors",
    "MAX_ILL_SCALE",
]

# ---------------------------------------------------------------------------
# Synthetic batches (Normalization Steps page)
# ---------------------------------------------------------------------------

DISTRIBUTIONS = ("normal", "skewed", "bimodal", "uniform", "heavy outliers")


def _standard_draws(kind: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """Draws with population mean 0 and std 1 (outliers: std ≈ 1 before the outliers)."""
    if kind == "normal":
        return rng.standard_normal(shape)
    if kind == "skewed":
        s = 0.75  # lognormal shape; moments below are exact for it
        mean, std = np.exp(s**2 / 2), np.sqrt((np.exp(s**2) - 1) * np.exp(s**2))
        return (rng.lognormal(0.0, s, shape) - mean) / std
    if kind == "bimodal":
        spread = 0.3  # each mode's std; the modes sit at ±1
        modes = rng.choice([-1.0, 1.0], size=shape)
        return (modes + spread * rng.standard_normal(shape)) / np.sqrt(1 + spread**2)
    if kind == "uniform":
        return rng.uniform(-np.sqrt(3.0), np.sqrt(3.0), shape)
    if kind == "heavy outliers":
        z = rng.standard_normal(shape)
        is_outlier = rng.random(shape) < 0.05  # 5 % of values sit 8 std away
        return np.where(is_outlier, 8.0 * rng.choice([-1.0, 1.0], size=shape), z)
    raise ValueError(f"Unknown distribution {kind!r}; choose one of {', '.join(DISTRIBUTIONS)}.")


def synthetic_batch(kind: str, n: int, means: tuple[float, ...], scales: tuple[float, ...], seed: int) -> np.ndarray:
    """A seeded ``(n, C)`` float64 batch: feature j is ``means[j] + scales[j]·z`` with z of ``kind``.

    Args:
        kind: one of :data:`DISTRIBUTIONS`.
        n: batch size N (≥ 1).
        means, scales: per-feature location and scale, length C.
        seed: seed for ``np.random.default_rng``.
    """
    if len(means) != len(scales) or not means:
        raise ValueError("means and scales need one value per feature, and at least one feature.")
    rng = np.random.default_rng(seed)
    z = _standard_draws(kind, (n, len(means)), rng)  # (N, C)
    return np.asarray(means, dtype=np.float64) + np.asarray(scales, dtype=np.float64) * z  # (N, C)


# ---------------------------------------------------------------------------
# User CSV: rows are examples, columns are features
# ---------------------------------------------------------------------------

MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # matches server.maxUploadSize in .streamlit/config.toml
MAX_ROWS = 2000  # examples kept; more are cut with a warning
MAX_COLS = 16  # features kept; more are cut with a warning


@dataclass(frozen=True)
class DataIssue:
    """One thing the user should know about their data."""

    level: Literal["error", "warning", "info"]
    text: str


@dataclass(frozen=True)
class ParsedCSV:
    """A validated numeric table, or the reason there is none.

    ``values`` is ``(N, C)`` float64 with finite values and N ≥ 2, or None when an
    issue of level ``error`` explains why nothing usable was found.
    """

    values: np.ndarray | None
    columns: tuple[str, ...]
    issues: tuple[DataIssue, ...]

    @property
    def ok(self) -> bool:
        return self.values is not None


def _fail(text: str, issues: list[DataIssue] | None = None) -> ParsedCSV:
    return ParsedCSV(None, (), (*(issues or []), DataIssue("error", text)))


def _decode(raw: bytes) -> tuple[str | None, str]:
    """Text, or None and the reason it is not text."""
    if raw[:2] in (b"\xff\xfe", b"\xfe\xff"):  # a UTF-16 byte-order mark
        try:
            return raw.decode("utf-16"), ""
        except UnicodeDecodeError:
            return None, "It starts like UTF-16 text but does not decode."
    if b"\x00" in raw[:4096]:
        return None, "This is a binary file, not a text CSV."
    try:
        return raw.decode("utf-8-sig"), ""
    except UnicodeDecodeError as err:
        return None, f"The file is not UTF-8 text (byte {err.start}). Save it as 'CSV UTF-8' and upload again."


def _sniff_delimiter(text: str) -> str:
    sample = text[:8192]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


def _read_rows(text: str, delimiter: str) -> list[list[str]]:
    """Non-blank rows, at most MAX_ROWS + 2 of them (header + one extra to detect a cut)."""
    rows = []
    for row in csv.reader(io.StringIO(text), delimiter=delimiter):
        if any(cell.strip() for cell in row):
            rows.append([cell.strip() for cell in row])
        if len(rows) > MAX_ROWS + 1:
            break
    return rows


def _read_table(text: str, issues: list[DataIssue]) -> pd.DataFrame | None:
    delimiter = _sniff_delimiter(text)
    if delimiter != ",":
        issues.append(DataIssue("info", f"Detected {delimiter!r} as the column separator."))
    try:
        rows = _read_rows(text, delimiter)
    except csv.Error as err:
        issues.append(DataIssue("error", f"Could not read the file as CSV: {err}."))
        return None
    if not rows:
        issues.append(DataIssue("error", "The file has no data."))
        return None
    has_header = any(cell and not _is_number(cell) for cell in rows[0])
    names = rows[0] if has_header else [f"f{j}" for j in range(len(rows[0]))]
    body = rows[1:] if has_header else rows
    if has_header and len(set(names)) < len(names):
        issues.append(DataIssue("warning", "Some column names repeat; they were numbered (name, name.1, …)."))
        names = [n if names[:k].count(n) == 0 else f"{n}.{names[:k].count(n)}" for k, n in enumerate(names)]
    ragged = sum(len(r) != len(names) for r in body)
    if ragged:
        issues.append(DataIssue("warning", f"Skipped {ragged} row(s) whose number of cells differs from the header."))
    body = [r for r in body if len(r) == len(names)]
    if delimiter == ";":  # the European convention: decimal commas
        body = [[cell.replace(",", ".") for cell in r] for r in body]
    return pd.DataFrame(body, columns=names, dtype=str)


def _numeric_columns(frame: pd.DataFrame, issues: list[DataIssue]) -> pd.DataFrame:
    numeric = frame.apply(lambda col: pd.to_numeric(col, errors="coerce"))
    keep = [c for c in numeric.columns if numeric[c].notna().mean() >= 0.5]
    dropped = [c for c in numeric.columns if c not in keep]
    if dropped:
        shown = ", ".join(repr(c[:30]) for c in dropped[:8]) + (" …" if len(dropped) > 8 else "")
        issues.append(DataIssue("warning", f"Dropped {len(dropped)} non-numeric column(s): {shown}."))
    return numeric[keep]


def _capped(frame: pd.DataFrame, issues: list[DataIssue]) -> pd.DataFrame:
    """At most MAX_ROWS rows and MAX_COLS columns, with a notice for each cut."""
    if len(frame) > MAX_ROWS:
        frame = frame.iloc[:MAX_ROWS]
        issues.append(DataIssue("warning", f"Only the first {MAX_ROWS} rows are used."))
    if frame.shape[1] > MAX_COLS:
        issues.append(DataIssue("warning", f"Only the first {MAX_COLS} of {frame.shape[1]} columns are used."))
        frame = frame.iloc[:, :MAX_COLS]
    return frame


def _complete_rows(numeric: pd.DataFrame, issues: list[DataIssue]) -> np.ndarray:
    """The rows whose every cell is a finite number; the others are counted in a notice."""
    values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)
    finite = np.isfinite(values).all(axis=1)
    if not finite.all():
        n_bad = int((~finite).sum())
        issues.append(
            DataIssue("warning", f"Dropped {n_bad} row(s) with a missing, non-numeric, NaN or infinite value.")
        )
    return values[finite]


def _warn_constant(columns: pd.Index, values: np.ndarray, issues: list[DataIssue]) -> None:
    constant = [c for c, col in zip(columns, values.T, strict=True) if np.ptp(col) == 0]
    if constant:
        issues.append(
            DataIssue(
                "warning",
                f"Constant feature(s) {', '.join(map(repr, constant))}: σ²_B = 0, so x̂ = 0 and y = β for every "
                "example; only ε keeps the division finite.",
            )
        )


def parse_csv(raw: bytes) -> ParsedCSV:
    """Turn uploaded or pasted bytes into a clean ``(N, C)`` float64 table.

    Rules: at most :data:`MAX_UPLOAD_BYTES`; UTF-8 text; ``,`` ``;`` tab or ``|``
    separated; an optional header; non-numeric columns dropped (and named); rows
    with a non-numeric, NaN or infinite cell dropped (and counted); at most
    :data:`MAX_ROWS` rows and :data:`MAX_COLS` columns kept; at least 2 rows needed,
    since train-mode BN needs more than one value per feature.
    """
    if len(raw) > MAX_UPLOAD_BYTES:
        return _fail(f"The file is {len(raw) / 2**20:.1f} MB; the limit is {MAX_UPLOAD_BYTES // 2**20} MB.")
    if not raw.strip():
        return _fail("The file is empty.")
    text, why_not = _decode(raw)
    if text is None:
        return _fail(why_not)
    issues: list[DataIssue] = []
    frame = _read_table(text, issues)
    if frame is None:
        return ParsedCSV(None, (), tuple(issues))
    if frame.empty:
        return _fail("The file has a header row but no data rows.", issues)
    numeric = _numeric_columns(_capped(frame, issues), issues)
    if numeric.shape[1] == 0:
        return _fail("No numeric columns found. Rows should be examples and columns numeric features.", issues)
    values = _complete_rows(numeric, issues)
    if values.shape[0] == 0:
        return _fail("No complete numeric rows are left.", issues)
    if values.shape[0] == 1:
        return _fail(
            "Only 1 row: train-mode BN needs more than one value per feature (the variance of one value is 0, "
            "so every x̂ would be 0). Add at least one more row.",
            issues,
        )
    _warn_constant(numeric.columns, values, issues)
    return ParsedCSV(values, tuple(str(c) for c in numeric.columns), tuple(issues))


# ---------------------------------------------------------------------------
# Datasets for training (Training Comparison, Batch-Size, Inference, Why BN Works, Multi-device)
# ---------------------------------------------------------------------------

DATASETS = ("digits", "moons", "circles", "spirals", "blobs")
DatasetName = Literal["digits", "moons", "circles", "spirals", "blobs"]
MAX_ILL_SCALE = 1000.0  # ill-scaled features span scales 1 … 1000, log-spaced
_DEFAULT_NOISE = {"moons": 0.1, "circles": 0.05, "spirals": 0.05, "blobs": 1.0}
_CLASS_DEFAULTS = {"digits": 10, "moons": 2, "circles": 2, "spirals": 3, "blobs": 4}


@dataclass(frozen=True)
class DataConfig:
    """Which dataset, and how to make it. Fields a dataset does not use are ignored.

    The train/test split depends only on this config (mostly ``seed``), never on the
    training seed, so every training run on the same ``DataConfig`` sees the same data.
    """

    name: DatasetName = "digits"  # one of DATASETS
    seed: int = 0  # seeds the synthetic draws and the train/test split
    n_samples: int = 1000  # synthetic sets: examples before the split (digits: always 1,797)
    noise: float | None = None  # synthetic sets: std of the Gaussian noise (blobs: cluster std); None = default
    n_features: int = 20  # blobs only: input dimensions (moons, circles, spirals are 2-D; digits 64)
    n_classes: int | None = None  # spirals: arms, blobs: clusters; None = default (3 arms, 4 blobs)
    ill_scaled: bool = False  # multiply feature j by a fixed scale in [1, 1000] (see ill_scale_factors)
    test_fraction: float = 0.25  # share of each class held out for the test set (stratified)


@dataclass(frozen=True, eq=False)
class DataSplit:
    """A train/test split as CPU tensors. Fresh tensors on every call: mutate them freely.

    ``x_*`` are ``(N, D)`` float32 (digits: D = 64 flattened 8×8 pixels in [0, 1]);
    ``y_*`` are ``(N,)`` int64 class ids in ``[0, n_classes)``.
    """

    x_train: torch.Tensor  # (N_train, D) float32
    y_train: torch.Tensor  # (N_train,) int64
    x_test: torch.Tensor  # (N_test, D) float32
    y_test: torch.Tensor  # (N_test,) int64
    n_classes: int  # number of classes
    image_shape: tuple[int, int, int] | None  # (1, 8, 8) for digits: x.view(N, *image_shape); None otherwise
    name: str  # the dataset's name
    feature_scales: tuple[float, ...] | None = field(default=None)  # the per-feature factors when ill_scaled

    @property
    def n_features(self) -> int:
        """D, the input width."""
        return int(self.x_train.shape[1])


def _moons(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (like sklearn's make_moons, with random angles)."""
    y = np.arange(n) % 2  # (n,)  balanced classes
    t = rng.uniform(0.0, np.pi, n)  # (n,)
    outer = np.stack([np.cos(t), np.sin(t)], axis=1)  # (n, 2)
    inner = np.stack([1.0 - np.cos(t), 0.5 - np.sin(t)], axis=1)  # (n, 2)
    x = np.where(y[:, None] == 0, outer, inner) + noise * rng.standard_normal((n, 2))
    return x, y


def _circles(n: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """A circle of radius 1 around one of radius 0.5: not linearly separable."""
    y = np.arange(n) % 2  # (n,)
    t = rng.uniform(0.0, 2.0 * np.pi, n)  # (n,)
    r = np.where(y == 0, 1.0, 0.5)  # (n,)
    x = r[:, None] * np.stack([np.cos(t), np.sin(t)], axis=1) + noise * rng.standard_normal((n, 2))
    return x, y


def _spirals(n: int, n_arms: int, noise: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """K interleaved spiral arms (CS231n's classic): arm k starts at angle 2πk/K and winds 4 rad."""
    y = np.arange(n) % n_arms  # (n,)
    r = rng.uniform(0.05, 1.0, n)  # (n,)  radius grows along the arm
    t = 2.0 * np.pi * y / n_arms + 4.0 * r  # (n,)
    x = r[:, None] * np.stack([np.sin(t), np.cos(t)], axis=1) + noise * rng.standard_normal((n, 2))
    return x, y


def _blobs(
    n: int, n_features: int, n_classes: int, noise: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian clusters in D dims; centres uniform in [-3, 3]^D, cluster std ``noise``."""
    centres = rng.uniform(-3.0, 3.0, (n_classes, n_features))  # (K, D)
    y = np.arange(n) % n_classes  # (n,)
    x = centres[y] + noise * rng.standard_normal((n, n_features))  # (n, D)
    return x, y


def _synthetic(cfg: DataConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    noise = _DEFAULT_NOISE[cfg.name] if cfg.noise is None else cfg.noise
    if cfg.name == "moons":
        return _moons(cfg.n_samples, noise, rng)
    if cfg.name == "circles":
        return _circles(cfg.n_samples, noise, rng)
    n_classes = cfg.n_classes or _CLASS_DEFAULTS[cfg.name]
    if cfg.name == "spirals":
        return _spirals(cfg.n_samples, n_classes, noise, rng)
    return _blobs(cfg.n_samples, cfg.n_features, n_classes, noise, rng)


def _stratified_split(y: np.ndarray, test_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Index arrays (train, test): each class contributes round(test_fraction·count) test examples."""
    train, test = [], []
    for c in np.unique(y):
        members = rng.permutation(np.flatnonzero(y == c))
        n_test = round(test_fraction * len(members))
        test.append(members[:n_test])
        train.append(members[n_test:])
    return rng.permutation(np.concatenate(train)), rng.permutation(np.concatenate(test))


def ill_scale_factors(n_features: int, seed: int) -> np.ndarray:
    """Per-feature scales for the ill-scaled option: log-spaced from 1 to 1000, in a seeded order.

    Returns ``(D,)`` float64 with min exactly 1 and max exactly :data:`MAX_ILL_SCALE` (for D ≥ 2).
    The order is shuffled so that the scale is not tied to, say, the pixel position.
    """
    scales = np.logspace(0.0, np.log10(MAX_ILL_SCALE), n_features)  # (D,)
    return np.random.default_rng([seed, 7]).permutation(scales)


def _validate(cfg: DataConfig) -> None:
    if cfg.name not in DATASETS:
        raise ValueError(f"Unknown dataset {cfg.name!r}; choose one of {', '.join(DATASETS)}.")
    if not 0.0 < cfg.test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {cfg.test_fraction}.")
    if cfg.name == "digits":
        return
    n_classes = cfg.n_classes or _CLASS_DEFAULTS[cfg.name]
    if cfg.name in ("spirals", "blobs") and n_classes < 2:
        raise ValueError(f"{cfg.name} needs at least 2 classes, got {n_classes}.")
    if cfg.n_samples < 4 * n_classes:
        raise ValueError(f"n_samples={cfg.n_samples} is too small: use at least {4 * n_classes} for this dataset.")
    if cfg.name == "blobs" and cfg.n_features < 1:
        raise ValueError(f"blobs needs n_features ≥ 1, got {cfg.n_features}.")
    if cfg.noise is not None and cfg.noise < 0:
        raise ValueError(f"noise must be ≥ 0, got {cfg.noise}.")


def load_dataset(cfg: DataConfig) -> DataSplit:
    """Build the seeded train/test split that ``cfg`` describes.

    Returns:
        A :class:`DataSplit` of fresh CPU tensors: ``x`` float32 ``(N, D)``, ``y`` int64
        ``(N,)``. Digits: 1,347 train / 450 test, pixels in [0, 1], ``image_shape``
        ``(1, 8, 8)``. Synthetic sets: ``n_samples`` split by ``test_fraction``.

    Raises:
        ValueError: an unknown dataset or an impossible size.
    """
    _validate(cfg)
    rng = np.random.default_rng(cfg.seed)
    if cfg.name == "digits":
        x, y = digits_arrays()
    else:
        x, y = _synthetic(cfg, rng)
    train, test = _stratified_split(y, cfg.test_fraction, rng)
    scales = ill_scale_factors(x.shape[1], cfg.seed) if cfg.ill_scaled else np.ones(x.shape[1])
    x = x * scales  # (N, D)  a new array, so the digits cache is never touched

    def tensor_x(rows: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(x[rows], dtype=np.float32))

    return DataSplit(
        x_train=tensor_x(train),
        y_train=torch.from_numpy(np.asarray(y[train], dtype=np.int64)),
        x_test=tensor_x(test),
        y_test=torch.from_numpy(np.asarray(y[test], dtype=np.int64)),
        n_classes=int(y.max()) + 1,
        image_shape=(1, 8, 8) if cfg.name == "digits" else None,
        name=cfg.name,
        feature_scales=tuple(float(s) for s in scales) if cfg.ill_scaled else None,
    )


@functools.lru_cache(maxsize=32)
def train_size(cfg: DataConfig) -> int:
    """How many training examples ``load_dataset(cfg)`` gives; remembered per config, since a page checks
    its controls against it on every rerun of every session (``DataConfig`` is frozen, so hashable)."""
    return len(load_dataset(cfg).y_train)


DIGITS = DataConfig("digits")  # the handwritten digits at their fixed split (data seed 0): every page trains on it
