"""Change in daily rates between a recent window and the one before it."""

from __future__ import annotations

from churnkit.features.context import Context, zero_if_null
from churnkit.features.spec import Family, FeatureSpec

F = "trends"
PAIRS = ((7, 28), (30, 90))
"""(recent, recent + previous): last 7 vs previous 21 days, last 30 vs previous 60."""
SERIES = (("n_activity", "activity events"), ("n_session", "sessions"), ("n_purchase", "purchases"),
          ("revenue", "revenue"))


def _change(col: str, recent: int, total: int):
    def derive(t):
        r = zero_if_null(t[f"sum_{col}_{recent}"])
        a = zero_if_null(t[f"sum_{col}_{total}"])
        return r / recent - (a - r) / (total - recent)

    return derive


def family(ctx: Context) -> Family:
    agg: dict = {}
    features = []
    for recent, total in PAIRS:
        prev = total - recent
        for col, label in SERIES:
            agg.update([ctx.wsum(col, recent), ctx.wsum(col, total)])
            unit = "currency/day" if col == "revenue" else f"{label}/day"
            features.append(
                (FeatureSpec(f"{col.removeprefix('n_')}_rate_change_{recent}v{prev}",
                             f"daily {label} in the last {recent} days minus the previous {prev} days", unit, F),
                 _change(col, recent, total))
            )
    return Family(F, agg, features)
