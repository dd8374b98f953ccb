"""Change in daily rates between a recent window and the one before it."""

from __future__ import annotations

import math

from churnkit.features.context import Agg, Context, zero_if_null
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec, Wording
from churnkit.features.wording import ReasonRows, money, num

F = "trends"
PAIRS = ((7, 28), (30, 90))
"""(recent, recent + previous): last 7 vs previous 21 days, last 30 vs previous 60."""
SERIES = (
    ("n_activity", "activity events", "actions per day"),
    ("n_session", "sessions", "sessions per day"),
    ("n_purchase", "purchases", "purchases per day"),
    ("revenue", "revenue", "spend per day"),
)
"""(daily column, what it counts, how a reason names its daily rate)."""


def _wording(label: str, recent: int, prev: int, currency: bool) -> Wording:
    def wording(r: ReasonRows, i: int, lead: str) -> str:
        x = r.v(i, lead)
        when = f"in the last {recent} days vs the previous {prev}"
        if math.isnan(x) or x == 0:
            return f"{label} unchanged {when}"
        amount = money(abs(x)) if currency else num(abs(x))
        return f"{label} {'fell' if x < 0 else 'rose'} by {amount} {when}"

    return wording


def _change(col: str, recent: int, total: int):
    def derive(t):
        r = zero_if_null(t[f"sum_{col}_{recent}"])
        a = zero_if_null(t[f"sum_{col}_{total}"])
        return r / recent - (a - r) / (total - recent)

    return derive


def _aggregates(ctx: Context) -> dict[str, Agg]:
    agg: dict[str, Agg] = {}
    for recent, total in PAIRS:
        for col, _, _ in SERIES:
            agg.update([ctx.wsum(col, recent), ctx.wsum(col, total)])
    return agg


def family(options: FamilyOptions) -> Family:
    features = []
    for recent, total in PAIRS:
        prev = total - recent
        for col, counted, rate in SERIES:
            series = col.removeprefix("n_")
            unit = "currency/day" if col == "revenue" else f"{counted}/day"
            spec = FeatureSpec(
                f"{series}_rate_change_{recent}v{prev}",
                f"daily {counted} in the last {recent} days minus the previous {prev} days", unit, F,
                fact=f"trend:{series}", wording=_wording(rate, recent, prev, currency=col == "revenue"),
            )
            features.append((spec, _change(col, recent, total)))
    return Family(F, features, _aggregates)
