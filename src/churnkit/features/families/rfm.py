"""Recency, frequency and monetary value, with same-day purchases merged (as in CLV models).

``clv_frequency``, ``clv_recency_days`` and ``clv_age_days`` are the x, t_x and T of the
BG/NBD literature in days: repeat purchase days, first to last purchase day, first
purchase day to the last observed day (the day before the cutoff).
"""

from __future__ import annotations

import ibis

from churnkit.features.context import Context, days_between, ratio, zero_if_null
from churnkit.features.spec import Family, FeatureSpec

F = "rfm"


def family(ctx: Context) -> Family:
    h = ctx.hist
    agg = dict(
        [
            ctx.wmax("last_activity_ts"),
            ctx.wmax("last_purchase_ts"),
            ctx.wmin("first_ts"),
            ctx.wdays("n_activity"),
            ctx.wdays("n_purchase"),
            ctx.wsum("n_purchase"),
            ctx.wsum("revenue"),
            ctx.first_active_day(),
        ]
    )
    agg["first_purchase_day"] = h.day.min(where=h.n_purchase > 0)
    agg["last_purchase_day"] = h.day.max(where=h.n_purchase > 0)
    agg["first_day_revenue"] = h.revenue.sum(where=h.is_first_purchase_day).cast("float64")

    def repeat_days(t):
        x = t.days_n_purchase_all - 1.0
        return ibis.ifelse(x > 0, x, 0.0)

    features = [
        (FeatureSpec("days_since_last_activity", "days since the last activity", "days", F),
         lambda t: days_between(t.cutoff, t.max_last_activity_ts_all)),
        (FeatureSpec("days_since_last_purchase", "days since the last purchase", "days", F),
         lambda t: days_between(t.cutoff, t.max_last_purchase_ts_all)),
        (FeatureSpec("days_since_first_event", "days since the user's first event", "days", F),
         lambda t: days_between(t.cutoff, t.min_first_ts_all)),
        (FeatureSpec("days_since_first_activity", "days since the first active day", "days", F),
         lambda t: days_between(t.cutoff, t.first_active_day)),
        (FeatureSpec("active_days_total", "days with any activity, all history", "days", F),
         lambda t: zero_if_null(t.days_n_activity_all)),
        (FeatureSpec("purchase_days_total", "days with a purchase, all history", "days", F),
         lambda t: zero_if_null(t.days_n_purchase_all)),
        (FeatureSpec("purchases_total", "purchases, all history", "purchases", F),
         lambda t: zero_if_null(t.sum_n_purchase_all)),
        (FeatureSpec("revenue_total", "revenue, all history", "currency", F),
         lambda t: zero_if_null(t.sum_revenue_all)),
        (FeatureSpec("avg_order_value", "mean purchase amount, all history", "currency", F),
         lambda t: ratio(t.sum_revenue_all, t.sum_n_purchase_all)),
        (FeatureSpec("clv_frequency", "repeat purchase days (x): purchase days after the first", "days", F),
         lambda t: zero_if_null(repeat_days(t))),
        (FeatureSpec("clv_recency_days", "first to last purchase day (t_x)", "days", F),
         lambda t: days_between(t.last_purchase_day, t.first_purchase_day)),
        (FeatureSpec("clv_age_days", "first purchase day to the day before the cutoff (T)", "days", F),
         lambda t: days_between(t.cutoff, t.first_purchase_day) - 1.0),
        (FeatureSpec("clv_monetary", "mean spend per repeat purchase day (zbar)", "currency", F),
         lambda t: ratio(t.sum_revenue_all - t.first_day_revenue, repeat_days(t))),
    ]
    return Family(F, agg, features)
