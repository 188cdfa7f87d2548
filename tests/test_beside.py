"""bn_core.beside: a function run in a forked worker returns its value, or None and a reason, and never leaks.

And the Training comparison that uses it: the no-norm net trained beside the BN net is
bitwise the one trained here.
"""

from __future__ import annotations

import math
import operator
import os
import time

import pytest

from bn_core.beside import start_beside
from bn_core.experiments.training import ComparisonConfig, comparison, run_comparison


def _beside(fn, *args):
    b = start_beside(fn, *args)
    assert b is not None, "no worker slot was free: an earlier worker was not reaped"
    return b


def test_a_worker_returns_the_functions_value_and_frees_its_slot():
    for n in range(4):  # one slot per spare core: a leaked slot would make a later start return None
        assert _beside(math.factorial, n + 5).result(timeout_s=60, start_grace_s=5) == math.factorial(n + 5)


def test_no_worker_is_forked_from_a_process_with_more_than_one_torch_thread():
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(2)  # its OpenMP pool would not survive a fork: the worker would hang
    try:
        assert start_beside(operator.add, 1, 2) is None
    finally:
        torch.set_num_threads(threads)
    assert _beside(operator.add, 1, 2).result(timeout_s=30) == 3  # one thread again: a worker, its slot free


def test_a_failing_function_is_reported_not_raised():
    b = _beside(operator.truediv, 1, 0)
    assert b.result(timeout_s=60, start_grace_s=5) is None
    assert "ZeroDivisionError" in b.problem


def test_a_worker_past_its_timeout_is_stopped_and_reaped():
    b = _beside(time.sleep, 30)
    assert b.result(timeout_s=0.3, start_grace_s=5) is None and b.problem == "the worker timed out"
    assert not b._proc.is_alive() and b._proc.exitcode is not None
    assert _beside(math.factorial, 3).result(timeout_s=60, start_grace_s=5) == 6  # its slot is free again


def test_a_worker_that_dies_is_reported_and_reaped():
    b = _beside(os._exit, 3)
    assert b.result(timeout_s=60) is None and b.problem == "the worker exited without a result"
    assert b._proc.exitcode == 3


@pytest.mark.slow
def test_the_net_trained_beside_is_bitwise_the_net_trained_here(monkeypatch):
    cfg = ComparisonConfig(depth=2, steps=120, seed=3)
    here = run_comparison(cfg)  # below BESIDE_FROM_S: both nets in this process
    started = []
    real_start = comparison.start_beside
    monkeypatch.setattr(comparison, "BESIDE_FROM_S", 0.0)
    monkeypatch.setattr(comparison, "start_beside", lambda *a: started.append(real_start(*a)) or started[-1])
    beside = run_comparison(cfg)
    assert started and started[0] is not None and started[0].problem is None, "the no-norm net did not train beside"
    for name in ("curves", "layers", "hist", "summary"):
        assert getattr(here, name).equals(getattr(beside, name)), name
