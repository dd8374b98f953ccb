"""How broad the user's interest is: distinct categories and channels in the last 90 days."""

from __future__ import annotations

import ibis

from churnkit.features.context import Context
from churnkit.features.spec import Family, FeatureSpec

F = "diversity"
W = 90


def family(ctx: Context) -> Family:
    e = ctx.events
    day = e.ts.truncate("D")
    cats = e.filter(e.category.notnull()).select(e.user_id, day=day, kind=ibis.literal("category"), value=e.category)
    chans = e.filter(e.channel.notnull()).select(e.user_id, day=day, kind=ibis.literal("channel"), value=e.channel)
    values = cats.union(chans, distinct=True)
    c = ctx.cutoffs
    j = values.join(c, (values.day < c.cutoff) & (values.day >= c.cutoff - ibis.interval(days=W)))
    table = j.group_by(["user_id", "cutoff"]).aggregate(
        **{
            f"categories_{W}d": j.value.nunique(where=j.kind == "category").cast("float64"),
            f"channels_{W}d": j.value.nunique(where=j.kind == "channel").cast("float64"),
        }
    )
    specs = [
        FeatureSpec(f"categories_{W}d", f"distinct product categories touched, last {W} days", "categories", F),
        FeatureSpec(f"channels_{W}d", f"distinct channels used, last {W} days", "channels", F),
    ]
    return Family(F, {}, [], joins=[(table, specs)])
