"""scikit-learn's bundled handwritten digits (1,797 8×8 images, 10 classes), read without importing scikit-learn.

:func:`bn_core.data.load_dataset` splits them; this module only finds and reads the file,
once per process.
"""

from __future__ import annotations

import functools
import gzip
import importlib.util
from pathlib import Path

import numpy as np

__all__ = ["DIGITS_FILE", "read_digits_table", "digits_arrays"]

DIGITS_FILE = ("datasets", "data", "digits.csv.gz")  # inside the scikit-learn package: 64 pixel counts, then the label


def read_digits_table() -> np.ndarray:
    """The digits file scikit-learn ships, ``(1797, 65)``, read as ``sklearn.datasets.load_digits`` reads it.

    Found on disk without importing scikit-learn: importing ``sklearn.datasets`` costs about
    0.75 s, the largest part of a fresh server's first training after ``import torch`` and
    ``torch.optim``'s ``torch._dynamo``; reading the file takes 5 ms. If the file is not where
    scikit-learn 1.9 keeps it, ``load_digits`` is asked (tests/test_data.py checks both agree).
    """
    spec = importlib.util.find_spec("sklearn")  # finds the package without running it
    for root in spec.submodule_search_locations if spec and spec.submodule_search_locations else ():
        path = Path(root).joinpath(*DIGITS_FILE)
        if path.is_file():
            with gzip.open(path, mode="rt", encoding="utf-8") as text:
                return np.loadtxt(text, delimiter=",")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    return np.column_stack([bunch.data, bunch.target])


@functools.lru_cache(maxsize=1)
def digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled 8×8 digits, loaded once per process. Callers must copy."""
    table = read_digits_table()
    x = table[:, :-1].astype(np.float32) / 16.0  # (1797, 64)  pixel counts 0…16 → [0, 1]
    y = table[:, -1].astype(np.int64)  # (1797,)
    x.flags.writeable = False  # the cache is shared: make accidental in-place edits fail loudly
    y.flags.writeable = False
    return x, y
