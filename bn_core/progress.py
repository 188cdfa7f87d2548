"""The progress callback every long computation in bn_core accepts.

``progress(fraction, message)`` with ``fraction`` in [0, 1]; the UI turns it into a
progress bar with an estimate. bn_core never prints: this is its only channel to a user.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str = "") -> None:
    """The default callback: report nothing."""


def sub_progress(progress: Progress | None, i: int, n: int, label: str) -> Progress | None:
    """The callback for part ``i`` of ``n`` of a computation: it reports that part's share of the whole."""
    if progress is None:
        return None
    return lambda f, msg: progress((i + f) / n, f"{label}: {msg}")
