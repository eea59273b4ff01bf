"""Readable durations: one unit that fits the data, and a few significant digits.

Results are computed in ns (the analysis' source unit after cycles); a table
or an axis shows them in the unit where the typical value reads between 1 and
1000, so 19624737.467122 ns becomes ``19.62 ms``.
"""

from __future__ import annotations

import math
from typing import Iterable

#: From the largest: name and nanoseconds per unit.
UNITS = (("s", 1e9), ("ms", 1e6), ("µs", 1e3), ("ns", 1.0))
SIGNIFICANT = 4


def unit_for(typical_ns: Iterable[float]) -> tuple[str, float]:
    """The unit (name, ns per unit) in which the median of the typical values is ≥ 1."""
    values = sorted(abs(v) for v in typical_ns if v == v and v != 0)
    if not values:
        return "ns", 1.0
    typical = values[len(values) // 2]
    return next((name, scale) for name, scale in UNITS if typical >= scale or scale == 1.0)


def significant(value: float, digits: int = SIGNIFICANT) -> str:
    """``value`` with ``digits`` significant digits, thousands separated, no exponent below 10^9."""
    if value != value:
        return "n/a"
    if value == 0 or math.isinf(value):
        return f"{value:g}"
    magnitude = math.floor(math.log10(abs(value)))
    decimals = max(0, digits - 1 - magnitude)
    return f"{value:,.{decimals}f}"


def format_duration(ns: float, unit: tuple[str, float] | None = None) -> str:
    """One duration with its unit, e.g. ``19.62 ms``."""
    name, scale = unit or unit_for([ns])
    return f"{significant(ns / scale)} {name}"
