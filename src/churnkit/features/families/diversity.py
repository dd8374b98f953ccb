"""How broad the user's interest is: distinct categories and channels in the last 90 days."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir

from churnkit.features.context import Context
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec
from churnkit.features.wording import counted, num, simple

F = "diversity"
W = 90

CATEGORIES = FeatureSpec(
    f"categories_{W}d", f"distinct product categories touched, last {W} days", "categories", F,
    wording=simple(lambda x: f"touched {counted(x, 'product categories')} in the last {W} days", num))
CHANNELS = FeatureSpec(
    f"channels_{W}d", f"distinct channels used, last {W} days", "channels", F,
    wording=simple(lambda x: f"used {counted(x, 'channels')} in the last {W} days", num))
COLUMNS = ((CATEGORIES, "category"), (CHANNELS, "channel"))


def _distinct_recent(ctx: Context, column: str, spec: FeatureSpec) -> tuple[ir.Table, list[FeatureSpec]]:
    """Distinct values of one column per (user, cutoff) over the last ``W`` days.

    One (user, day, value) table per column: a union of both with a literal kind column
    made DuckDB hash four keys over every event, for the same answer. Only events in
    ``[first cutoff - W days, last cutoff)`` can count, so the others are dropped before
    the distinct (the join below still decides per cutoff).
    """
    e, cuts = ctx.events, ctx.cutoffs.cutoff
    e = e.filter(e[column].notnull(), e.ts >= cuts.min() - ibis.interval(days=W), e.ts < cuts.max())
    v = e.select("user_id", day_n=ctx.day(e.ts), value=e[column]).distinct()
    c = ctx.cutoffs.mutate(cutoff_n=ctx.day(ctx.cutoffs.cutoff))
    j = v.join(c, (v.day_n < c.cutoff_n) & (v.day_n >= c.cutoff_n - W))
    table = j.group_by(["user_id", "cutoff"]).aggregate(**{spec.name: j.value.nunique().cast("float64")})
    return table, [spec]


def _joins(ctx: Context) -> list[tuple[ir.Table, list[FeatureSpec]]]:
    return [_distinct_recent(ctx, column, spec) for spec, column in COLUMNS]


def family(options: FamilyOptions) -> Family:
    return Family(F, [], joins=_joins, joined=[spec for spec, _ in COLUMNS])
