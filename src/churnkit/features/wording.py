"""How reasons read: number formats, plurals, and the rows a feature's wording looks at.

Family modules state each fact in these terms (``FeatureSpec.wording``); the explain step
ranks facts by SHAP contribution and asks the leading feature's wording for the text.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from churnkit.contracts import EVENT_NOUNS

NO_PURCHASE = "no purchase yet"
ONE_ACTIVE_DAY = "only one active day so far"

SINGULAR: dict[str, str] = {plural: singular for singular, plural in EVENT_NOUNS.values()} | {
    "categories": "category",
    "channels": "channel",
    "messages": "message",
    "redemptions": "redemption",
    "events": "event",
    "days": "day",
    "actions": "action",
    "campaign messages": "campaign message",
    "product categories": "product category",
}
"""Units are plural in the specs; this is what they read as next to exactly 1."""


# --------------------------------------------------------------------------- formats


def _is_int(x: float) -> bool:
    return abs(x - round(x)) < 1e-9


def num(x: float) -> str:
    """A count or small quantity: ints as ints, else one decimal (two significant if tiny)."""
    if _is_int(x):
        return f"{round(x):,}"
    if abs(x) >= 0.1:
        return f"{x:,.1f}"
    return f"{x:.2g}"


def money(x: float) -> str:
    return f"{x:,.2f}"


def whole(x: float) -> str:
    return f"{math.floor(x + 0.5):,}"


def pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def times(x: float) -> str:
    return f"{x:.1f}".removesuffix(".0") + "x"


def plural(n: str, unit: str) -> str:
    """``unit`` is plural; singular when the number shown is exactly 1."""
    if n != "1":
        return unit
    if unit in SINGULAR:
        return SINGULAR[unit]
    if unit.endswith("ies"):
        return unit[:-3] + "y"
    return unit[:-1] if unit.endswith("s") and not unit.endswith("ss") else unit


def days(x: float) -> str:
    n = whole(x)
    return f"{n} {plural(n, 'days')}"


def counted(n: float, unit: str) -> str:
    c = num(n)
    return f"{c} {plural(c, unit)}"


def humanise(s: str) -> str:
    return s.replace("_", " ")


def fmt_value(x: float, unit: str, name: str = "") -> str:
    """A feature value in its unit, the way a person would read it."""
    if unit.startswith("currency"):
        return money(x)
    if unit == "ratio" and "rate" in name:
        return pct(x)
    if unit == "days":
        return whole(x)
    return num(x)


# --------------------------------------------------------------------------- rows


class ReasonRows:
    """The feature values of the rows being explained, and what is typical for each feature.

    ``v(i, name)`` is row ``i``'s value (NaN when the model has no such feature, so a
    wording that quotes another feature degrades to its simpler text); ``typical`` quotes the
    training population's median; ``activity`` holds the events that count as activity.
    """

    def __init__(
        self,
        x: np.ndarray,
        names: list[str],
        medians: Mapping[str, float | None],
        entries: Mapping[str, Mapping[str, Any]],
        activity: frozenset[str],
    ):
        self.x = x
        self.col = {n: j for j, n in enumerate(names)}
        self.median = dict(medians)
        self.entries = entries
        self.activity = activity
        self._typical: dict[tuple[str, str, str], str] = {}
        self.said: list[str] = []
        """Features whose facts the text being rendered states (see :meth:`states`)."""

    def states(self, name: str) -> None:
        """Declare that the text being rendered states ``name``'s fact (a wording falling back
        on another fact's words), so that fact is not given as another reason."""
        self.said.append(name)

    def v(self, i: int, name: str) -> float:
        j = self.col.get(name)
        return float("nan") if j is None else float(self.x[i, j])

    def typical(self, name: str, fmt: Callable[[float], str], label: str = "most users") -> str:
        """' (most users: 3)' from the profile; formatted once per feature, not per row."""
        key = (name, label, fmt.__qualname__)
        shown = self._typical.get(key)
        if shown is None:
            m = self.median.get(name)
            shown = self._typical[key] = "" if m is None else f" ({label}: {fmt(m)})"
        return shown


# --------------------------------------------------------------------------- wordings


def generic(r: ReasonRows, i: int, lead: str) -> str:
    """'<description>: <value> <unit> (typical: <population median>)', with a few idioms."""
    entry = r.entries[lead]
    desc, unit, x = entry["description"], entry["unit"], r.v(i, lead)
    if unit == "indicator":
        subject, _, level = desc.partition(" is ")
        if not level:
            return f"{desc}: {'yes' if x >= 0.5 else 'no'}"
        return f"{humanise(subject)} is {'' if x >= 0.5 else 'not '}{humanise(level)}"
    since = "days since the last "
    if lead.startswith("days_since_last_") and desc.startswith(since):
        thing = desc.removeprefix(since)
        if math.isnan(x):
            return f"no {thing} yet"
        return f"last {thing} {days(x)} ago" + r.typical(lead, whole, "typical")
    if math.isnan(x):
        return f"{desc}: no data"
    shown = fmt_value(x, unit, lead)
    word = "" if unit.startswith("currency") or unit in ("ratio", "indicator") else " " + plural(shown, unit)
    return f"{desc}: {shown}{word}" + r.typical(lead, lambda m: fmt_value(m, unit, lead), "typical")


def known(wording: Callable[[ReasonRows, int, str], str]) -> Callable[[ReasonRows, int, str], str]:
    """A wording for a count that is never missing in a feature frame (zero-filled): given
    rows without a value, it says there is no data instead of inventing a number."""

    def guarded(r: ReasonRows, i: int, lead: str) -> str:
        return generic(r, i, lead) if math.isnan(r.v(i, lead)) else wording(r, i, lead)

    return guarded


def simple(text: Callable[[float], str], median: Callable[[float], str], missing: str | None = None):
    """A one-feature wording: ``text(value)`` plus the population median, or ``missing``."""

    def wording(r: ReasonRows, i: int, lead: str) -> str:
        x = r.v(i, lead)
        if math.isnan(x):
            return missing if missing is not None else generic(r, i, lead)
        return text(x) + r.typical(lead, median)

    return wording
