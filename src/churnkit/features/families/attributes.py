"""User attributes from the users table: tenure and one-hot categorical attributes.

Levels are fixed when a training set is built and stored in its manifest, so scoring
produces the same columns whatever values the new data holds.
"""

from __future__ import annotations

import re

import ibis

from churnkit.features.context import days_between
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec, Wording
from churnkit.features.wording import ReasonRows, days, humanise, simple, whole

F = "attributes"
USER_PREFIX = "u__"
"""Users-table columns are joined under this prefix to avoid clashing with aggregates."""

TENURE_DAYS = FeatureSpec("tenure_days", "days since signup", "days", F,
                          wording=simple(lambda x: f"signed up {days(x)} ago", whole), ages=True)


def level_feature_name(attr: str, level: str) -> str:
    return re.sub(r"[^a-z0-9_]+", "_", f"{attr}_is_{level}".lower().replace("+", "_plus")).strip("_")


def _attribute(attr: str, levels: dict[str, str]) -> Wording:
    """The user's own level speaks for the whole attribute."""

    def wording(r: ReasonRows, i: int, lead: str) -> str:
        for name, level in levels.items():
            if r.v(i, name) >= 0.5:
                return f"{humanise(attr)} is {humanise(level)}"
        return f"{humanise(attr)} is none of the common values"

    return wording


def _indicator(attr: str, level: str):
    def derive(t):
        col = t[f"{USER_PREFIX}{attr}"].cast("string")
        return ibis.ifelse(col == level, 1.0, 0.0).fill_null(0.0)

    return derive


def family(options: FamilyOptions) -> Family:
    features = []
    if options.signup:
        features.append((TENURE_DAYS, lambda t: days_between(t.cutoff, t[f"{USER_PREFIX}signup_ts"])))
    for attr, levels in options.attribute_levels.items():
        names = {level_feature_name(attr, level): level for level in levels}
        wording = _attribute(attr, names)
        for name, level in names.items():
            spec = FeatureSpec(name, f"{attr} is {level}", "indicator", F, fact=f"attribute:{attr}",
                               wording=wording, one_hot=True)
            features.append((spec, _indicator(attr, level)))
    return Family(F, features)
