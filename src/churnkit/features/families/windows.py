"""Counts per event type, activity, active days and revenue over the last 7, 30 and 90 days."""

from __future__ import annotations

import math

from churnkit.contracts import EVENT_NOUNS, EVENT_TYPES
from churnkit.features.context import Agg, Context, zero_if_null
from churnkit.features.families.rfm import (
    DAYS_SINCE_LAST_ACTIVITY,
    DAYS_SINCE_LAST_PURCHASE,
    RECENT_REVENUE,
    REVENUE_TOTAL,
    purchase_recency,
    silence,
    spent_in_total,
)
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec, Wording
from churnkit.features.wording import ReasonRows, known, money, num, plural, whole

F = "windows"
WINDOWS = (7, 30, 90)
PUSH_OPENS_BEFORE = "push_opens_prev_60d"
"""The push family's opens in the 60 days before the last 30 (push-open trend texts)."""


def count_name(event: str, window: int) -> str:
    """``n_<event>_<window>d``: how many ``event`` in the last ``window`` days."""
    return f"n_{event}_{window}d"


def revenue_name(window: int) -> str:
    """``revenue_<window>d``: revenue in the last ``window`` days."""
    return f"revenue_{window}d"


def event_fact(event: str) -> str:
    """The fact all counts of one event share (other families' totals join it)."""
    return f"events:{event}"


# --------------------------------------------------------------------------- wording


def _implied_by_silence(r: ReasonRows, i: int, window: int) -> bool:
    return r.v(i, DAYS_SINCE_LAST_ACTIVITY.name) >= window


def _implied_by_no_purchase(r: ReasonRows, i: int, window: int) -> bool:
    d = r.v(i, DAYS_SINCE_LAST_PURCHASE.name)
    return math.isnan(d) or d >= window


def _count_text(r: ReasonRows, i: int, event: str, lead: str, window: int) -> str:
    """'3 sessions in the last 30 days', or the silence that already says it."""
    n = r.v(i, lead)
    if n == 0 and event == "purchase" and _implied_by_no_purchase(r, i, window):
        return purchase_recency(r, i, lead)
    if n == 0 and event in r.activity and _implied_by_silence(r, i, window):
        return silence(r, i, lead)
    c = num(n)
    return f"{c} {plural(c, EVENT_NOUNS[event][1])} in the last {window} days" + r.typical(lead, num)


def event_counts(event: str, window: int) -> Wording:
    def wording(r: ReasonRows, i: int, lead: str) -> str:
        return _count_text(r, i, event, lead, window)

    return known(wording)


def push_open_counts(window: int | None) -> Wording:
    """Opens in the last 30 days against the monthly rate of the 60 days before; ``window``
    None is the push family's count of those 60 days."""

    def wording(r: ReasonRows, i: int, lead: str) -> str:
        recent = count_name("push_open", 30)
        now, before = r.v(i, recent), r.v(i, PUSH_OPENS_BEFORE) / 2
        if not (math.isnan(now) or math.isnan(before)) and now != before:
            verb = "fell" if now < before else "rose"
            return f"push opens {verb} from {num(before)} to {num(now)} in the last 30 days"
        if not math.isnan(now):
            return _count_text(r, i, "push_open", recent, 30)
        if window is None:
            c = num(r.v(i, lead))
            return f"{c} {plural(c, 'push opens')} in the 60 days before the last 30" + r.typical(lead, num)
        return _count_text(r, i, "push_open", lead, window)

    return known(wording)


def _activity(window: int, days_count: bool) -> Wording:
    def wording(r: ReasonRows, i: int, lead: str) -> str:
        n = r.v(i, lead)
        if n == 0 and _implied_by_silence(r, i, window):
            return silence(r, i, lead)
        if days_count:
            return f"active on {whole(n)} of the last {window} days" + r.typical(lead, whole)
        c = num(n)
        return f"{c} {plural(c, 'actions')} in the last {window} days" + r.typical(lead, num)

    return known(wording)


def _spend(window: int) -> Wording:
    def wording(r: ReasonRows, i: int, lead: str) -> str:
        n = r.v(i, lead)
        if n == 0 and _implied_by_no_purchase(r, i, window):
            return purchase_recency(r, i, lead)
        if n > 0 and n == r.v(i, REVENUE_TOTAL.name):  # everything they ever spent: one fact
            return spent_in_total(r, i, n) + r.typical(lead, money)
        return f"spent {money(n)} in the last {window} days" + r.typical(lead, money)

    return known(wording)


# --------------------------------------------------------------------------- features


def _sum(col: str, w: int):
    return lambda t: zero_if_null(t[f"sum_{col}_{w}"])


def _days(col: str, w: int):
    return lambda t: zero_if_null(t[f"days_{col}_{w}"])


def _count_spec(event: str, w: int) -> FeatureSpec:
    plural_ = EVENT_NOUNS[event][1]
    wording = push_open_counts(w) if event == "push_open" and w in (30, 90) else event_counts(event, w)
    return FeatureSpec(count_name(event, w), f"{plural_} in the last {w} days", plural_, F,
                       fact=event_fact(event), wording=wording)


def _aggregates(ctx: Context) -> dict[str, Agg]:
    agg: dict[str, Agg] = {}
    for w in WINDOWS:
        for ev in EVENT_TYPES:
            agg.update([ctx.wsum(f"n_{ev}", w)])
        agg.update([ctx.wsum("n_activity", w), ctx.wdays("n_activity", w), ctx.wsum("revenue", w)])
    return agg


def family(options: FamilyOptions) -> Family:
    assert tuple(revenue_name(w) for w in WINDOWS) == RECENT_REVENUE
    features = []
    for w in WINDOWS:
        features += [(_count_spec(ev, w), _sum(f"n_{ev}", w)) for ev in EVENT_TYPES]
        features += [
            (FeatureSpec(f"activity_{w}d", f"activity events in the last {w} days", "events", F,
                         fact="activity", wording=_activity(w, days_count=False)), _sum("n_activity", w)),
            (FeatureSpec(f"active_days_{w}d", f"active days in the last {w} days", "days", F,
                         fact="activity", wording=_activity(w, days_count=True)), _days("n_activity", w)),
            (FeatureSpec(revenue_name(w), f"revenue net of refunds in the last {w} days", "currency", F,
                         fact="spend", wording=_spend(w)), _sum("revenue", w)),
        ]
    return Family(F, features, _aggregates)
