"""Exposure to campaigns (pushes carrying a campaign id) and coupon use."""

from __future__ import annotations

from churnkit.features.context import Context, days_between, zero_if_null
from churnkit.features.spec import Family, FeatureSpec

F = "campaigns"


def family(ctx: Context) -> Family:
    agg = dict([ctx.wsum("n_campaign_push", 90), ctx.wsum("n_campaign_push"), ctx.wsum("n_coupon_redeem"),
                ctx.wmax("last_campaign_ts")])
    features = [
        (FeatureSpec("campaign_pushes_90d", "campaign messages received, last 90 days", "messages", F),
         lambda t: zero_if_null(t.sum_n_campaign_push_90)),
        (FeatureSpec("campaign_pushes_total", "campaign messages received, all history", "messages", F),
         lambda t: zero_if_null(t.sum_n_campaign_push_all)),
        (FeatureSpec("coupon_redeems_total", "coupon redemptions, all history", "redemptions", F),
         lambda t: zero_if_null(t.sum_n_coupon_redeem_all)),
        (FeatureSpec("days_since_last_campaign", "days since the last campaign message", "days", F),
         lambda t: days_between(t.cutoff, t.max_last_campaign_ts_all)),
    ]
    return Family(F, agg, features)
