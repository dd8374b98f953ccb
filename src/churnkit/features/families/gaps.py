"""Rhythm: gaps between active days, and how the current silence compares with it."""

from __future__ import annotations

import ibis

from churnkit.features.context import SECONDS_PER_DAY, Context, days_between, ratio, seconds
from churnkit.features.spec import Family, FeatureSpec

F = "gaps"


def family(ctx: Context) -> Family:
    h = ctx.hist
    agg = dict([ctx.wmax("last_activity_ts")])
    agg |= {
        "gap_n": h.gap_days.count().cast("float64"),
        "gap_sum": h.gap_days.sum().cast("float64"),
        "gap_sq": (h.gap_days * h.gap_days).sum().cast("float64"),
        "gap_max": h.gap_days.max().cast("float64"),
        # Each active day's previous active day is day - gap; it only grows from one active
        # day to the next, so its maximum is the day before the last active day. Plain max
        # aggregates: no ordered aggregate, same result on every engine.
        "last_active_day_s": seconds(h.day).max(where=h.n_activity > 0),
        "prev_active_day_s": (seconds(h.day) - h.gap_days * SECONDS_PER_DAY).max(where=h.gap_days.notnull()),
    }

    def mean(t):
        return ratio(t.gap_sum, t.gap_n)

    def std(t):
        m = mean(t)
        var = ratio(t.gap_sq, t.gap_n) - m * m
        return ibis.ifelse(t.gap_n > 0, ibis.greatest(var, 0.0).sqrt(), ibis.null("float64"))

    features = [
        (FeatureSpec("gap_mean_days", "typical days between active days", "days", F), mean),
        (FeatureSpec("gap_std_days", "spread of the days between active days", "days", F), std),
        (FeatureSpec("gap_max_days", "longest gap between active days", "days", F), lambda t: t.gap_max),
        (FeatureSpec("last_gap_days", "days between the last two active days", "days", F),
         lambda t: (t.last_active_day_s - t.prev_active_day_s) / SECONDS_PER_DAY),
        (FeatureSpec("silence_vs_typical_gap", "days since last activity over the typical gap", "ratio", F),
         lambda t: ratio(days_between(t.cutoff, t.max_last_activity_ts_all), mean(t))),
    ]
    return Family(F, agg, features)
