"""The progress callback every long computation in bn_core accepts.

``progress(fraction, message)`` with ``fraction`` in [0, 1]; the UI turns it into a
progress bar with an estimate. bn_core never prints: this is its only channel to a user.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[float, str], None]


def no_progress(fraction: float, message: str = "") -> None:
    """The default callback: report nothing."""
