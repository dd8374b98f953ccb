"""Push engagement: open rates and how long since the user last opened one."""

from __future__ import annotations

import math

from churnkit.features.context import Agg, Context, days_between, ratio, zero_if_null
from churnkit.features.families.windows import PUSH_OPENS_BEFORE, event_fact, push_open_counts
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec, Wording
from churnkit.features.wording import ReasonRows, pct

F = "push"


def _open_rate(window: int) -> Wording:
    def wording(r: ReasonRows, i: int, lead: str) -> str:
        v = r.v(i, lead)
        if math.isnan(v):
            return f"no pushes received in the last {window} days"
        return f"opened {pct(v)} of pushes in the last {window} days" + r.typical(lead, pct)

    return wording


def _aggregates(ctx: Context) -> dict[str, Agg]:
    agg = dict([ctx.wsum("n_push_sent", w) for w in (30, 90)] + [ctx.wsum("n_push_open", w) for w in (30, 90)])
    agg.update([ctx.wmax("last_push_open_ts")])
    return agg


def family(options: FamilyOptions) -> Family:
    features = [
        (FeatureSpec("push_open_rate_30d", "push opens per push received, last 30 days", "ratio", F,
                     fact="push_rate", wording=_open_rate(30)),
         lambda t: ratio(t.sum_n_push_open_30, t.sum_n_push_sent_30)),
        (FeatureSpec("push_open_rate_90d", "push opens per push received, last 90 days", "ratio", F,
                     fact="push_rate", wording=_open_rate(90)),
         lambda t: ratio(t.sum_n_push_open_90, t.sum_n_push_sent_90)),
        (FeatureSpec(PUSH_OPENS_BEFORE, "push opens in the 60 days before the last 30", "push opens", F,
                     fact=event_fact("push_open"), wording=push_open_counts(None)),
         lambda t: zero_if_null(t.sum_n_push_open_90) - zero_if_null(t.sum_n_push_open_30)),
        (FeatureSpec("days_since_last_push_open", "days since the last push open", "days", F),
         lambda t: days_between(t.cutoff, t.max_last_push_open_ts_all)),
    ]
    return Family(F, features, _aggregates)
