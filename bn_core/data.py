"""Data for the lab: seeded synthetic batches, and the user's own CSV, validated.

Everything is seeded through an explicit ``np.random.default_rng(seed)``; nothing
here touches global random state, so cached results are reproducible.

The CSV parser never raises on bad input. It returns a :class:`ParsedCSV` whose
``issues`` say, in plain words, what was wrong and what was done about it, so the
page can show them and keep working.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

__all__ = [
    "DISTRIBUTIONS",
    "synthetic_batch",
    "DataIssue",
    "ParsedCSV",
    "parse_csv",
    "MAX_UPLOAD_BYTES",
    "MAX_ROWS",
    "MAX_COLS",
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


def _decode(raw: bytes) -> str | None:
    if b"\x00" in raw[:4096]:
        return None
    for encoding in ("utf-8-sig", "utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else ("utf-8-sig",):
        try:
            return raw.decode(encoding)
        except UnicodeDecodeError:
            continue
    return None


def _sniff_delimiter(text: str) -> str:
    sample = text[:8192]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        return ","


def _has_header(first_row: list[str]) -> bool:
    """A header row has at least one cell that is not a number."""
    return any(pd.to_numeric(pd.Series([cell]), errors="coerce").isna().all() for cell in first_row if cell.strip())


def _read_table(text: str, issues: list[DataIssue]) -> pd.DataFrame | None:
    delimiter = _sniff_delimiter(text)
    if delimiter != ",":
        issues.append(DataIssue("info", f"Detected {delimiter!r} as the column separator."))
    first_row = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    header = 0 if _has_header(first_row) else None
    try:
        frame = pd.read_csv(
            io.StringIO(text),
            sep=delimiter,
            header=header,
            nrows=MAX_ROWS + 1,
            dtype=str,
            skip_blank_lines=True,
            on_bad_lines="skip",
            engine="python",
        )
    except (pd.errors.ParserError, pd.errors.EmptyDataError, csv.Error, ValueError) as err:
        issues.append(DataIssue("error", f"Could not read the file as CSV: {err}"))
        return None
    if header is None:
        frame.columns = [f"f{j}" for j in range(frame.shape[1])]
    elif len(set(first_row)) < len(first_row):
        issues.append(DataIssue("warning", "Some column names repeat; pandas numbered them (name, name.1, …)."))
    return frame


def _numeric_columns(frame: pd.DataFrame, issues: list[DataIssue]) -> pd.DataFrame:
    numeric = frame.apply(lambda col: pd.to_numeric(col.str.strip(), errors="coerce"))
    keep = [c for c in numeric.columns if numeric[c].notna().mean() >= 0.5]
    dropped = [c for c in numeric.columns if c not in keep]
    if dropped:
        shown = ", ".join(repr(c[:30]) for c in dropped[:8]) + (" …" if len(dropped) > 8 else "")
        issues.append(DataIssue("warning", f"Dropped {len(dropped)} non-numeric column(s): {shown}."))
    return numeric[keep]


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
    text = _decode(raw)
    if text is None:
        return _fail("This does not look like a text CSV (binary or not UTF-8). Save it as 'CSV UTF-8' and retry.")
    issues: list[DataIssue] = []
    frame = _read_table(text, issues)
    if frame is None:
        return ParsedCSV(None, (), tuple(issues))
    if len(frame) > MAX_ROWS:
        frame = frame.iloc[:MAX_ROWS]
        issues.append(DataIssue("warning", f"Only the first {MAX_ROWS} rows are used."))
    if frame.shape[1] > MAX_COLS:
        issues.append(DataIssue("warning", f"Only the first {MAX_COLS} of {frame.shape[1]} columns are used."))
        frame = frame.iloc[:, :MAX_COLS]
    numeric = _numeric_columns(frame, issues)
    if numeric.shape[1] == 0:
        return _fail("No numeric columns found. Rows should be examples and columns numeric features.", issues)
    finite = np.isfinite(numeric.to_numpy(dtype=np.float64, na_value=np.nan)).all(axis=1)
    if not finite.all():
        n_bad = int((~finite).sum())
        issues.append(
            DataIssue("warning", f"Dropped {n_bad} row(s) with a missing, non-numeric, NaN or infinite value.")
        )
    values = numeric.to_numpy(dtype=np.float64, na_value=np.nan)[finite]
    if values.shape[0] == 0:
        return _fail("No complete numeric rows are left.", issues)
    if values.shape[0] == 1:
        return _fail(
            "Only 1 row: train-mode BN needs more than one value per feature (the variance of one value is 0, "
            "so every x̂ would be 0). Add at least one more row.",
            issues,
        )
    constant = [c for c, col in zip(numeric.columns, values.T, strict=True) if np.ptp(col) == 0]
    if constant:
        issues.append(
            DataIssue(
                "warning",
                f"Constant feature(s) {', '.join(map(repr, constant))}: σ²_B = 0, so x̂ = 0 and y = β for every "
                "example; only ε keeps the division finite.",
            )
        )
    return ParsedCSV(values, tuple(str(c) for c in numeric.columns), tuple(issues))
