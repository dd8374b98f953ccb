"""Recency, frequency and monetary value, with same-day purchases merged (as in CLV models).

A purchase is an order (the lines of one ``order_id`` count once; see
:mod:`churnkit.features.context`) and revenue is net of refunds, so ``avg_order_value`` is
net revenue per order.

``clv_frequency``, ``clv_recency_days`` and ``clv_age_days`` are the x, t_x and T of the
BG/NBD literature in days: repeat purchase days, first to last purchase day, first
purchase day to the last observed day (the day before the cutoff).

Two of these also decide eligibility (:data:`ELIGIBILITY`): days since the last activity
(active within the look-back?) and days since the first active day (enough history?).
"""

from __future__ import annotations

import math

import ibis
import ibis.expr.types as ir

from churnkit.features.context import Agg, Context, days_before, days_between, ratio, zero_if_null
from churnkit.features.spec import Family, FamilyOptions, FeatureSpec
from churnkit.features.wording import (
    NO_PURCHASE,
    ReasonRows,
    counted,
    days,
    money,
    num,
    plural,
    simple,
    times,
    whole,
)

F = "rfm"

# --------------------------------------------------------------------------- wording


def silence(r: ReasonRows, i: int, lead: str) -> str:
    """How long the user has been quiet, against their own rhythm when the gaps are known."""
    r.states(DAYS_SINCE_LAST_ACTIVITY.name)
    d = r.v(i, DAYS_SINCE_LAST_ACTIVITY.name)
    if math.isnan(d):
        return "no activity yet"
    if d < 0.5:
        return "active within the last day"
    text = f"no activity for {days(d)}"
    ratio_, gap = r.v(i, "silence_vs_typical_gap"), r.v(i, "gap_mean_days")  # gaps family
    if ratio_ >= 1.5:
        r.states("gap_mean_days")
        return f"{text}, {times(ratio_)} this user's usual gap"
    if gap > 0:
        r.states("gap_mean_days")
        return f"{text} (usual gap for this user: {whole(gap)})"
    return text + r.typical(DAYS_SINCE_LAST_ACTIVITY.name, whole)


def purchase_recency(r: ReasonRows, i: int, lead: str) -> str:
    """Typical for the user is their own mean days between purchase days (t_x / x)."""
    r.states(DAYS_SINCE_LAST_PURCHASE.name)
    d = r.v(i, DAYS_SINCE_LAST_PURCHASE.name)
    if math.isnan(d):
        return NO_PURCHASE
    if d < 0.5:
        return "bought within the last day"
    x, tx = r.v(i, CLV_FREQUENCY.name), r.v(i, CLV_RECENCY_DAYS.name)
    if x >= 1 and tx > 0:
        return f"no purchase for {days(d)} (typical for this user: {whole(tx / x)})"
    return f"no purchase for {days(d)}" + r.typical(DAYS_SINCE_LAST_PURCHASE.name, whole)


def _first_seen(r: ReasonRows, i: int, lead: str) -> str:
    active = lead == DAYS_SINCE_FIRST_ACTIVITY.name
    d = r.v(i, lead)
    if math.isnan(d):
        return "no activity yet" if active else "no events yet"
    return f"{'first active' if active else 'first seen'} {days(d)} ago" + r.typical(lead, whole)


def _purchases(r: ReasonRows, i: int, lead: str) -> str:
    n = r.v(i, lead)
    if r.v(i, PURCHASES_TOTAL.name) == 0 or math.isnan(n):
        return NO_PURCHASE
    c = num(n)
    if lead == PURCHASE_DAYS_TOTAL.name:
        return f"bought on {c} {plural(c, 'days')} so far" + r.typical(lead, num)
    if lead == CLV_FREQUENCY.name:
        if n == 0:
            return "no repeat purchase yet"
        return f"{c} repeat purchase {plural(c, 'days')}" + r.typical(lead, num)
    return f"{c} {plural(c, 'purchases')} so far" + r.typical(lead, num)


def _order_value(r: ReasonRows, i: int, lead: str) -> str:
    v = r.v(i, lead)
    if lead == CLV_MONETARY.name:
        if math.isnan(v):
            return NO_PURCHASE if r.v(i, PURCHASES_TOTAL.name) == 0 else "no repeat purchase yet"
        return f"spends {money(v)} per repeat purchase day" + r.typical(lead, money)
    if math.isnan(v):
        return NO_PURCHASE
    return f"average order {money(v)}" + r.typical(lead, money)


def _revenue_total(r: ReasonRows, i: int, lead: str) -> str:
    v = r.v(i, lead)
    if v == 0 and r.v(i, PURCHASES_TOTAL.name) in (0.0,):
        return NO_PURCHASE
    return spent_in_total(r, i, v) + r.typical(lead, money)


RECENT_REVENUE = ("revenue_7d", "revenue_30d", "revenue_90d")
"""The windows family's revenue (shortest window first): a total all spent recently is one fact."""


def spent_in_total(r: ReasonRows, i: int, total: float) -> str:
    """'spent 40.00 in total', and 'all in the last 30 days' when a window holds all of it
    (then the windows' revenue says nothing more: declared stated)."""
    r.states(REVENUE_TOTAL.name)
    recent = [name for name in RECENT_REVENUE if total > 0 and r.v(i, name) == total]
    for name in recent:
        r.states(name)
    return f"spent {money(total)} in total" + (f", all in the last {recent[0][8:-1]} days" if recent else "")


# --------------------------------------------------------------------------- features

DAYS_SINCE_LAST_ACTIVITY = FeatureSpec("days_since_last_activity", "days since the last activity", "days", F,
                                       fact="silence", wording=silence)
DAYS_SINCE_LAST_PURCHASE = FeatureSpec("days_since_last_purchase", "days since the last purchase", "days", F,
                                       fact="purchase_recency", wording=purchase_recency)
DAYS_SINCE_FIRST_EVENT = FeatureSpec("days_since_first_event", "days since the user's first event", "days", F,
                                     fact="first_seen", wording=_first_seen, ages=True)
DAYS_SINCE_FIRST_ACTIVITY = FeatureSpec("days_since_first_activity", "days since the first active day", "days", F,
                                        fact="first_seen", wording=_first_seen, ages=True)
ACTIVE_DAYS_TOTAL = FeatureSpec("active_days_total", "days with any activity, all history", "days", F,
                                wording=simple(lambda x: f"active on {counted(x, 'days')} so far", whole))
PURCHASE_DAYS_TOTAL = FeatureSpec("purchase_days_total", "days with a purchase, all history", "days", F,
                                  fact="purchases", wording=_purchases)
PURCHASES_TOTAL = FeatureSpec("purchases_total", "purchases (orders), all history", "purchases", F,
                              fact="purchases", wording=_purchases)
REVENUE_TOTAL = FeatureSpec("revenue_total", "revenue net of refunds, all history", "currency", F,
                            wording=_revenue_total)
AVG_ORDER_VALUE = FeatureSpec("avg_order_value", "net revenue per order, all history", "currency", F,
                              fact="order_value", wording=_order_value)
CLV_FREQUENCY = FeatureSpec("clv_frequency", "repeat purchase days (x): purchase days after the first", "days", F,
                            fact="purchases", wording=_purchases)
CLV_RECENCY_DAYS = FeatureSpec("clv_recency_days", "first to last purchase day (t_x)", "days", F,
                               wording=simple(lambda x: f"{days(x)} between first and last purchase", whole,
                                              NO_PURCHASE))
CLV_AGE_DAYS = FeatureSpec("clv_age_days", "first purchase day to the day before the cutoff (T)", "days", F,
                           wording=simple(lambda x: f"first purchase {days(x)} ago", whole, NO_PURCHASE), ages=True)
CLV_MONETARY = FeatureSpec("clv_monetary", "mean spend per repeat purchase day (zbar)", "currency", F,
                           fact="order_value", wording=_order_value)


RFM_CORE: tuple[FeatureSpec, ...] = (
    DAYS_SINCE_LAST_ACTIVITY, DAYS_SINCE_LAST_PURCHASE, ACTIVE_DAYS_TOTAL, CLV_FREQUENCY, AVG_ORDER_VALUE,
    REVENUE_TOTAL,
)
"""Recency, frequency and monetary value, each for activity and for purchases: what a
simple model of a customer reads (the linear base the boosted models start from, see
:mod:`churnkit.models.linear_base`). On CDNOW a logistic on their logs ranks who buys
again within 0.001 ROC-AUC of the best three-column choice (bench/RESULTS.md)."""


def since_last_activity(t: ir.Table) -> ir.Value:
    return days_between(t.cutoff, t.max_last_activity_ts_all)


def since_first_activity(t: ir.Table) -> ir.Value:
    return days_before(t.cutoff, t.first_active_day)


ELIGIBILITY: tuple[tuple[FeatureSpec, object], ...] = (
    (DAYS_SINCE_LAST_ACTIVITY, since_last_activity),
    (DAYS_SINCE_FIRST_ACTIVITY, since_first_activity),
)
"""The features eligibility reads (computed for every build, selected or not)."""


def eligibility_aggregates(ctx: Context) -> dict[str, Agg]:
    return dict([ctx.wmax("last_activity_ts"), ctx.first_active_day()])


def _aggregates(ctx: Context) -> dict[str, Agg]:
    agg = dict(
        [
            ctx.wmax("last_activity_ts"),
            ctx.wmax("last_purchase_ts"),
            ctx.wmin("first_ts"),
            ctx.wdays("n_activity"),
            ctx.wdays("n_purchase"),
            ctx.wsum("n_purchase"),
            ctx.wsum("revenue"),
            ctx.first_active_day(),
        ]
    )
    def bought(t: ir.Table) -> ir.BooleanValue:
        return t.n_purchase > 0

    agg["first_purchase_day"] = Agg("min", lambda t: t.day_n, bought)
    agg["last_purchase_day"] = Agg("max", lambda t: t.day_n, bought)
    agg["first_day_revenue"] = Agg("sum", lambda t: t.revenue, lambda t: t.is_first_purchase_day, float64=True)
    return agg


def _repeat_days(t: ir.Table) -> ir.Value:
    x = t.days_n_purchase_all - 1.0
    return ibis.ifelse(x > 0, x, 0.0)


def family(options: FamilyOptions) -> Family:
    features = [
        (DAYS_SINCE_LAST_ACTIVITY, since_last_activity),
        (DAYS_SINCE_LAST_PURCHASE, lambda t: days_between(t.cutoff, t.max_last_purchase_ts_all)),
        (DAYS_SINCE_FIRST_EVENT, lambda t: days_between(t.cutoff, t.min_first_ts_all)),
        (DAYS_SINCE_FIRST_ACTIVITY, since_first_activity),
        (ACTIVE_DAYS_TOTAL, lambda t: zero_if_null(t.days_n_activity_all)),
        (PURCHASE_DAYS_TOTAL, lambda t: zero_if_null(t.days_n_purchase_all)),
        (PURCHASES_TOTAL, lambda t: zero_if_null(t.sum_n_purchase_all)),
        (REVENUE_TOTAL, lambda t: zero_if_null(t.sum_revenue_all)),
        (AVG_ORDER_VALUE, lambda t: ratio(t.sum_revenue_all, t.sum_n_purchase_all)),
        (CLV_FREQUENCY, lambda t: zero_if_null(_repeat_days(t))),
        (CLV_RECENCY_DAYS, lambda t: (t.last_purchase_day - t.first_purchase_day).cast("float64")),
        (CLV_AGE_DAYS, lambda t: days_before(t.cutoff, t.first_purchase_day) - 1.0),
        (CLV_MONETARY, lambda t: ratio(t.sum_revenue_all - t.first_day_revenue, _repeat_days(t))),
    ]
    return Family(F, features, _aggregates)
