"""The one entry point that turns events into features, for every caller.

Training sets (many cutoffs), batch scoring (one as-of date) and the online service (one
user's events in memory) all call :func:`feature_frame`; only the tables passed in differ.
It builds an Ibis expression, so the same code runs on DuckDB and on Spark.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from churnkit.config import ActivityEvents, FeatureSelection
from churnkit.contracts import KEYS
from churnkit.features.context import Agg, Context, feature_daily, on_duckdb
from churnkit.features.families import FAMILIES
from churnkit.features.families.attributes import USER_PREFIX
from churnkit.features.families.rfm import ELIGIBILITY, eligibility_aggregates
from churnkit.features.spec import FamilyOptions, FeatureSpec

ATTRIBUTE_EXCLUDE = {"user_id", "signup_ts"}
SIGNED_UP = "signed_up"
"""Whether the user had signed up before the cutoff (true when the users table has no signup)."""
ELIGIBILITY_COLUMNS: tuple[str, ...] = tuple(spec.name for spec, _ in ELIGIBILITY)
"""Days since the last activity and since the first active day: what eligibility reads."""


@dataclass
class FeatureFrame:
    """The feature expression plus what each column means.

    ``table`` has ``user_id``, ``cutoff``, the features (float64), the eligibility inputs
    (:data:`ELIGIBILITY_COLUMNS`, features themselves when selected) and ``signed_up``:
    one row per user with an event before the cutoff.
    """

    table: ir.Table
    specs: list[FeatureSpec]
    daily: ir.Table

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]


def family_options(users: ir.Table | None, attribute_levels: dict[str, list[str]] | None) -> FamilyOptions:
    """Attributes need a users table: without one there are no attribute features."""
    if users is None:
        return FamilyOptions()
    return FamilyOptions(attribute_levels=dict(attribute_levels or {}), signup="signup_ts" in users.columns)


def feature_frame(
    events: ir.Table,
    cutoffs: ir.Table,
    users: ir.Table | None,
    *,
    selection: FeatureSelection,
    activity: ActivityEvents,
    attribute_levels: dict[str, list[str]] | None,
) -> FeatureFrame:
    """Features per (user, cutoff) for every user with an event before the cutoff."""
    daily = feature_daily(events, activity.include, activity.exclude)
    ctx = Context(events, daily, cutoffs, users, duckdb=on_duckdb(events))
    options = family_options(users, attribute_levels)
    families = [FAMILIES[name](options) for name in selection.families]

    aggregates: dict[str, Agg] = {}
    for fam in families:
        aggregates.update(fam.aggregates(ctx))
    aggregates |= eligibility_aggregates(ctx)
    main = ctx.aggregate(aggregates)

    # every table is joined onto the aggregates first and all columns are derived in one
    # select: each select between joins would restate ~100 columns, and the Ibis compile
    # of the wide expression costs about as much as the query itself at 1M events
    if users is not None:
        u = users.rename({f"{USER_PREFIX}{c}": c for c in users.columns})
        main = main.left_join(u, main.user_id == u[f"{USER_PREFIX}user_id"])
    joined: list[FeatureSpec] = []
    for fam in families:
        for i, (table, fam_specs) in enumerate(fam.joins(ctx)):
            keep = [s for s in fam_specs if s.name not in selection.exclude]
            prefix = f"j{len(joined)}_{i}__"
            t = table.select(*KEYS, *[s.name for s in keep]).rename({f"{prefix}{k}": k for k in KEYS})
            main = main.left_join(t, (main.user_id == t[f"{prefix}user_id"]) & (main.cutoff == t[f"{prefix}cutoff"]))
            joined += keep

    columns: dict[str, ir.Value] = {}
    specs: list[FeatureSpec] = []
    for fam in families:
        for spec, derive in fam.features:
            if spec.name not in selection.exclude:
                columns[spec.name] = derive(main).cast("float64")
                specs.append(spec)
    columns |= {s.name: main[s.name].fill_null(0.0) for s in joined}
    specs += joined
    columns |= {spec.name: derive(main).cast("float64") for spec, derive in ELIGIBILITY if spec.name not in columns}
    signup = f"{USER_PREFIX}signup_ts"
    signed_up = (
        (main[signup].isnull() | (main[signup] < main.cutoff))
        if users is not None and "signup_ts" in users.columns
        else ibis.literal(True)
    )
    out = main.select(*KEYS, **columns, **{SIGNED_UP: signed_up})
    return FeatureFrame(out, specs, daily)


def attribute_columns(users: ir.Table | None) -> list[str]:
    if users is None:
        return []
    return [c for c in users.columns if c not in ATTRIBUTE_EXCLUDE]


def discover_levels(users: ir.Table | None, max_levels: int = 20) -> dict[str, list[str]]:
    """Most frequent values of each users-table attribute (fixed into the manifest)."""
    levels: dict[str, list[str]] = {}
    for col in attribute_columns(users):
        assert users is not None
        v = users[col].cast("string")
        counts = (
            users.filter(v.notnull())
            .group_by(value=v)
            .aggregate(n=ibis._.count())
            .order_by([ibis.desc("n"), "value"])
            .limit(max_levels)
            .execute()
        )
        levels[col] = sorted(str(x) for x in counts["value"])
    return levels
