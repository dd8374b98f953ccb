"""User attributes from the users table: tenure and one-hot categorical attributes.

Levels are fixed when a training set is built and stored in its manifest, so scoring
produces the same columns whatever values the new data holds.
"""

from __future__ import annotations

import re

import ibis

from churnkit.features.context import Context, days_between
from churnkit.features.spec import Family, FeatureSpec

F = "attributes"
USER_PREFIX = "u__"
"""Users-table columns are joined under this prefix to avoid clashing with aggregates."""


def level_feature_name(attr: str, level: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", f"{attr}_is_{level}".lower().replace("+", "_plus")).strip("_")


def family(ctx: Context) -> Family:
    if ctx.users is None:
        return Family(F, {}, [])
    features = []
    if "signup_ts" in ctx.users.columns:
        features.append(
            (FeatureSpec("tenure_days", "days since signup", "days", F),
             lambda t: days_between(t.cutoff, t[f"{USER_PREFIX}signup_ts"]))
        )
    for attr, levels in (ctx.attribute_levels or {}).items():
        for level in levels:
            features.append(
                (FeatureSpec(level_feature_name(attr, level), f"{attr} is {level}", "indicator", F),
                 _indicator(attr, level))
            )
    return Family(F, {}, features)


def _indicator(attr: str, level: str):
    def derive(t):
        col = t[f"{USER_PREFIX}{attr}"].cast("string")
        return ibis.ifelse(col == level, 1.0, 0.0).fill_null(0.0)

    return derive
