"""Conversion through view -> cart -> purchase over the last 90 days."""

from __future__ import annotations

from churnkit.features.context import Agg, Context, ratio
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec

F = "funnel"
W = 90


def _aggregates(ctx: Context) -> dict[str, Agg]:
    return dict([ctx.wsum(c, W) for c in ("n_view", "n_add_to_cart", "n_purchase", "n_session")])


def family(options: FamilyOptions) -> Family:
    features = [
        (FeatureSpec(f"view_to_cart_rate_{W}d", f"add-to-carts per view, last {W} days", "ratio", F),
         lambda t: ratio(t[f"sum_n_add_to_cart_{W}"], t[f"sum_n_view_{W}"])),
        (FeatureSpec(f"cart_to_purchase_rate_{W}d", f"purchases per add-to-cart, last {W} days", "ratio", F),
         lambda t: ratio(t[f"sum_n_purchase_{W}"], t[f"sum_n_add_to_cart_{W}"])),
        (FeatureSpec(f"session_to_purchase_rate_{W}d", f"purchases per session, last {W} days", "ratio", F),
         lambda t: ratio(t[f"sum_n_purchase_{W}"], t[f"sum_n_session_{W}"])),
    ]
    return Family(F, features, _aggregates)
