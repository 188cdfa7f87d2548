"""Claims computed from results: the one place a sentence on screen gets its numbers.

Every takeaway, verdict and "N× faster" sentence in the app is a :class:`Verdict`
built by a function next to the data it describes (in ``bn_core.experiments``).
The function decides ``holds`` from the numbers, with a named threshold and a
comment on why, and writes the sentence for *both* outcomes, so the page can never
claim what the numbers on it contradict.

Numbers in those sentences go through :func:`num` (enough significant digits,
scientific notation for tiny and huge values) and ratios through :func:`ratio`,
which divides the two numbers *as printed*, so the quotient on screen is the
quotient of the numbers beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

__all__ = ["Verdict", "num", "ratio", "pct"]


@dataclass(frozen=True)
class Verdict:
    """A sentence about a result, and whether the claim it tests held."""

    holds: bool  # True when the numbers support the claim; the text then states it
    text: str  # the sentence to show: the claim, or its opposite when holds is False

    def __str__(self) -> str:
        return self.text


def num(x: float, sig: int = 3) -> str:
    """``x`` with ``sig`` significant digits: plain for ordinary magnitudes, scientific otherwise.

    >>> num(0.0306), num(2.0), num(1e-6), num(8e-16), num(123456.0)
    ('0.0306', '2', '1e-06', '8e-16', '1.23e+05')
    """
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "nan"
    if math.isinf(x):
        return "∞" if x > 0 else "−∞"
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.{sig}g}"
    mantissa, exponent = f"{x:.{sig - 1}e}".split("e")
    mantissa = mantissa.rstrip("0").rstrip(".")
    return f"{mantissa}e{int(exponent):+03d}"


def pct(fraction: float, digits: int = 1) -> str:
    """A fraction as a percentage: ``pct(0.1234) == '12.3 %'``."""
    return f"{100 * fraction:.{digits}f} %"


def ratio(a: float, b: float, digits: int | None = None, unit: str = "") -> tuple[float, str]:
    """``a / b`` computed from the two numbers as they are printed, and the sentence fragment.

    Returns ``(quotient, "3.07× (8.44 vs 2.75 ms)")``: rounding first and dividing after
    keeps the printed ratio equal to the quotient of the printed numbers. By default the
    decimals follow the magnitude, so the smaller number keeps 3 significant digits
    (0.037 printed with 2 decimals would be 0.04, and the quotient off by 8 %).
    """
    if digits is None:
        smallest = min(abs(a), abs(b))
        digits = 2 if smallest == 0 or not math.isfinite(smallest) else max(2, 2 - math.floor(math.log10(smallest)))
        digits = min(digits, 12)
    a_shown, b_shown = round(a, digits), round(b, digits)
    q = a_shown / b_shown if b_shown else math.inf
    unit = f" {unit}" if unit else ""
    return q, f"{q:.2f}× ({a_shown:.{digits}f} vs {b_shown:.{digits}f}{unit})"
