"""Push engagement: open rates and how long since the user last opened one."""

from __future__ import annotations

from churnkit.features.context import Context, days_between, ratio, zero_if_null
from churnkit.features.spec import Family, FeatureSpec

F = "push"


def family(ctx: Context) -> Family:
    agg = dict([ctx.wsum("n_push_sent", w) for w in (30, 90)] + [ctx.wsum("n_push_open", w) for w in (30, 90)])
    agg.update([ctx.wmax("last_push_open_ts")])
    features = [
        (FeatureSpec("push_open_rate_30d", "push opens per push received, last 30 days", "ratio", F),
         lambda t: ratio(t.sum_n_push_open_30, t.sum_n_push_sent_30)),
        (FeatureSpec("push_open_rate_90d", "push opens per push received, last 90 days", "ratio", F),
         lambda t: ratio(t.sum_n_push_open_90, t.sum_n_push_sent_90)),
        (FeatureSpec("push_opens_prev_60d", "push opens in the 60 days before the last 30", "push opens", F),
         lambda t: zero_if_null(t.sum_n_push_open_90) - zero_if_null(t.sum_n_push_open_30)),
        (FeatureSpec("days_since_last_push_open", "days since the last push open", "days", F),
         lambda t: days_between(t.cutoff, t.max_last_push_open_ts_all)),
    ]
    return Family(F, agg, features)
