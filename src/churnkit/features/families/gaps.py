"""Rhythm: gaps between active days, and how the current silence compares with it."""

from __future__ import annotations

from collections.abc import Callable

import ibis
import ibis.expr.types as ir

from churnkit.features.context import Agg, Context, days_between, ratio
from churnkit.features.families.rfm import silence
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec, Wording
from churnkit.features.wording import ONE_ACTIVE_DAY, ReasonRows, days, simple, whole

F = "gaps"

RHYTHM = ("gap_mean_days", "gap_std_days", "gap_max_days", "last_gap_days")


def _rhythm(text: Callable[[float], str]) -> Wording:
    """A gap feature's wording; when every gap is the same length (two active days: one
    gap) the mean, longest and last gap are one number and the spread says nothing, so it
    is one fact, said once."""
    plain = simple(text, whole, ONE_ACTIVE_DAY)

    def wording(r: ReasonRows, i: int, lead: str) -> str:
        mean, longest, last = r.v(i, RHYTHM[0]), r.v(i, RHYTHM[2]), r.v(i, RHYTHM[3])
        if mean != longest and lead in RHYTHM[2:] and last == longest:  # the last gap is the longest
            r.states(RHYTHM[2])
            r.states(RHYTHM[3])
            return f"last gap between active days {days(last)}, the longest so far" + r.typical(lead, whole)
        if mean != longest:  # also when either is unknown (NaN)
            return plain(r, i, lead)
        for name in RHYTHM:
            r.states(name)
        two = r.v(i, "active_days_total") == 2  # rfm family
        said = f"one gap between active days so far, {days(mean)}" if two else f"every gap between active days {days(mean)}"
        return said + r.typical(RHYTHM[0], whole)

    return wording


GAP_MEAN_DAYS = FeatureSpec(
    "gap_mean_days", "typical days between active days", "days", F,
    wording=_rhythm(lambda x: f"usually {days(x)} between active days"))
GAP_STD_DAYS = FeatureSpec(
    "gap_std_days", "spread of the days between active days", "days", F,
    wording=_rhythm(lambda x: f"gaps between active days vary by {days(x)}"))
GAP_MAX_DAYS = FeatureSpec(
    "gap_max_days", "longest gap between active days", "days", F,
    wording=_rhythm(lambda x: f"longest gap between active days {days(x)}"))
LAST_GAP_DAYS = FeatureSpec(
    "last_gap_days", "days between the last two active days", "days", F,
    wording=_rhythm(lambda x: f"last gap between active days {days(x)}"))
assert RHYTHM == (GAP_MEAN_DAYS.name, GAP_STD_DAYS.name, GAP_MAX_DAYS.name, LAST_GAP_DAYS.name)
SILENCE_VS_TYPICAL_GAP = FeatureSpec(
    "silence_vs_typical_gap", "days since last activity over the typical gap", "ratio", F,
    fact="silence", wording=silence)


def _aggregates(ctx: Context) -> dict[str, Agg]:
    def gap(t: ir.Table) -> ir.Value:
        return t.gap_days

    agg = dict([ctx.wmax("last_activity_ts")])
    agg |= {
        "gap_n": Agg("count", gap, lambda t: t.gap_days.notnull(), float64=True),
        "gap_sum": Agg("sum", gap, float64=True),
        "gap_sq": Agg("sum", lambda t: t.gap_days * t.gap_days, float64=True),
        "gap_max": Agg("max", gap, float64=True),
        # Each active day's previous active day is day - gap; it only grows from one active
        # day to the next, so its maximum is the day before the last active day. Plain max
        # aggregates: no ordered aggregate, same result on every engine. Day numbers (whole
        # days, exact in float64) stand for the midnights' seconds / 86400.
        "last_active_day_n": Agg("max", lambda t: t.day_n, lambda t: t.n_activity > 0),
        "prev_active_day_n": Agg("max", lambda t: t.day_n - t.gap_days, lambda t: t.gap_days.notnull()),
    }
    return agg


def _mean(t: ir.Table) -> ir.Value:
    return ratio(t.gap_sum, t.gap_n)


def _std(t: ir.Table) -> ir.Value:
    m = _mean(t)
    var = ratio(t.gap_sq, t.gap_n) - m * m
    return ibis.ifelse(t.gap_n > 0, ibis.greatest(var, 0.0).sqrt(), ibis.null("float64"))


def family(options: FamilyOptions) -> Family:
    features = [
        (GAP_MEAN_DAYS, _mean),
        (GAP_STD_DAYS, _std),
        (GAP_MAX_DAYS, lambda t: t.gap_max),
        (LAST_GAP_DAYS, lambda t: t.last_active_day_n - t.prev_active_day_n),
        (SILENCE_VS_TYPICAL_GAP, lambda t: ratio(days_between(t.cutoff, t.max_last_activity_ts_all), _mean(t))),
    ]
    return Family(F, features, _aggregates)
