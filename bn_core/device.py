"""Device selection for every bn_core computation.

``pick_device`` chooses cuda, then mps, then cpu. The environment variable
``BN_DEVICE`` (for example ``cpu`` or ``cuda:0``) overrides the automatic choice,
which is how the tests and CI pin the CPU.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
import warnings

import torch

__all__ = ["pick_device", "device_label", "tune_cpu_runtime"]

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc mallopt() parameter ids


def _available(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        return torch.cuda.is_available() and (device.index or 0) < torch.cuda.device_count()
    if device.type == "mps":
        return bool(getattr(torch.backends, "mps", None)) and torch.backends.mps.is_available()
    return False


def pick_device(prefer: str | None = None) -> torch.device:
    """Return the device all bn_core work runs on.

    Args:
        prefer: a device string such as ``"cpu"``, ``"cuda"`` or ``"cuda:1"``.
            When None, the env var ``BN_DEVICE`` is used, and when that is unset
            the first available of cuda → mps → cpu.

    Returns:
        A ``torch.device``. A requested device that is not available falls back
        to the CPU with a ``RuntimeWarning`` instead of failing later.

    Raises:
        ValueError: ``prefer`` / ``BN_DEVICE`` is not a device string torch knows.
    """
    requested = prefer or os.environ.get("BN_DEVICE", "").strip() or None
    if requested is not None:
        try:
            device = torch.device(requested)
        except (RuntimeError, TypeError) as err:
            raise ValueError(f"Unknown device {requested!r}: use cpu, cuda, cuda:N or mps.") from err
        if _available(device):
            return device
        warnings.warn(f"Device {requested!r} is not available here; using the CPU.", RuntimeWarning, stacklevel=2)
        return torch.device("cpu")
    for candidate in ("cuda", "mps"):
        if _available(torch.device(candidate)):
            return torch.device(candidate)
    return torch.device("cpu")


def device_label(device: torch.device) -> str:
    """A short human label, e.g. ``"cuda (NVIDIA H100)"`` or ``"cpu"``."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return device.type


def tune_cpu_runtime(num_threads: int | None = None) -> dict[str, object]:
    """Process-wide CPU settings measured to matter for this app (see README, "Threads").

    * Torch's intra-op thread count: tiny models on 2 shared cores run faster with 1
      thread, and many concurrent sessions do not fight over cores. Default:
      env ``BN_THREADS``, else 1.
    * glibc keeps large freed blocks instead of returning them to the OS. Without
      this, every fresh 16 MB tensor costs ~4,000 page faults, which made
      elementwise code 4-5x slower than its arithmetic (a jemalloc-like effect,
      without a new dependency). No-op where glibc is absent.

    Returns what was set, for the benchmark record.
    """
    threads = num_threads or int(os.environ.get("BN_THREADS", "1"))
    torch.set_num_threads(threads)
    malloc_tuned = False
    if sys.platform.startswith("linux"):
        libc_name = ctypes.util.find_library("c")
        if libc_name:
            libc = ctypes.CDLL(libc_name)
            if hasattr(libc, "mallopt"):
                mmap_ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 << 20)  # blocks < 32 MB come from the heap
                trim_ok = libc.mallopt(_M_TRIM_THRESHOLD, 256 << 20)  # return memory past 256 MB free
                malloc_tuned = bool(mmap_ok and trim_ok)
    return {"torch_threads": threads, "malloc_tuned": malloc_tuned}
