"""Shared test set-up: the CPU, one torch thread, float64 where torch is the oracle."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("BN_DEVICE", "cpu")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest
import torch

torch.set_num_threads(1)

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "app.py")


@pytest.fixture
def gen() -> torch.Generator:
    """A seeded generator: tests never touch global random state."""
    return torch.Generator().manual_seed(1234)
