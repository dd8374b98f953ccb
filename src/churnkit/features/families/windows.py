"""Counts per event type, activity, active days and revenue over the last 7, 30 and 90 days."""

from __future__ import annotations

from churnkit.features.context import EVENT_TYPES, Context, zero_if_null
from churnkit.features.spec import Family, FeatureSpec

F = "windows"
WINDOWS = (7, 30, 90)
PLURAL = {
    "session": "sessions",
    "view": "views",
    "add_to_cart": "add-to-carts",
    "purchase": "purchases",
    "push_sent": "pushes received",
    "push_open": "push opens",
    "coupon_redeem": "coupon redemptions",
    "support_ticket": "support tickets",
    "checkin": "check-ins",
}


def _sum(col: str, w: int):
    return lambda t: zero_if_null(t[f"sum_{col}_{w}"])


def _days(col: str, w: int):
    return lambda t: zero_if_null(t[f"days_{col}_{w}"])


def family(ctx: Context) -> Family:
    agg: dict = {}
    features = []
    for w in WINDOWS:
        for ev in EVENT_TYPES:
            agg.update([ctx.wsum(f"n_{ev}", w)])
            features.append((FeatureSpec(f"n_{ev}_{w}d", f"{PLURAL[ev]} in the last {w} days", PLURAL[ev], F),
                             _sum(f"n_{ev}", w)))
        agg.update([ctx.wsum("n_activity", w), ctx.wdays("n_activity", w), ctx.wsum("revenue", w)])
        features += [
            (FeatureSpec(f"activity_{w}d", f"activity events in the last {w} days", "events", F),
             _sum("n_activity", w)),
            (FeatureSpec(f"active_days_{w}d", f"active days in the last {w} days", "days", F),
             _days("n_activity", w)),
            (FeatureSpec(f"revenue_{w}d", f"revenue in the last {w} days", "currency", F), _sum("revenue", w)),
        ]
    return Family(F, agg, features)
