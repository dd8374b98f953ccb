"""Operations KPIs per day, week and month, as Ibis expressions over the daily user table.

The daily table is the one the features read (:func:`~churnkit.features.context.daily_table`:
one row per user and day, orders counted once, revenue net of refunds, ``n_activity`` by the
same ``is_activity`` rule), with days in the business time zone. So "active" means one thing
in a feature, a label and a KPI, and the KPIs run unchanged on DuckDB and Spark.

Each KPI is a :class:`Kpi`: its name, what it means and its unit live together, like a
feature's spec. Rates are ratios of period totals (a paying rate is buyers over active users
of the period, not a mean of daily rates). Weeks start on Monday. A period that ends after
the data's last complete day is flagged ``complete = False``, never mixed silently with
finished ones.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churnkit.features.context import daily_table, days_between, ratio
from churnkit.features.families import gaps, rfm

Grain = Literal["day", "week", "month"]
GRAINS: tuple[Grain, ...] = ("day", "week", "month")
_UNIT = {"day": "D", "week": "W", "month": "M"}


@dataclass(frozen=True)
class Kpi:
    name: str
    description: str
    unit: str
    additive: bool = False
    """A total over users (0 in a period without activity); else a ratio (missing there)."""


KPIS: tuple[Kpi, ...] = (
    Kpi("active_users", "users with any activity in the period (DAU, WAU or MAU by grain)", "users", additive=True),
    Kpi("new_users", "active users whose first active day is in the period", "users", additive=True),
    Kpi("returning_users", "active users who were active before the period", "users", additive=True),
    Kpi("resurrected_users", "active users back after a silence of at least the churned cut (the recalled stage)",
        "users", additive=True),
    Kpi("reactivated_users", "active users back after a silence past the silent cut, short of the churned cut",
        "users", additive=True),
    Kpi("went_silent_users", "users whose silence passed the silent cut in the period", "users", additive=True),
    Kpi("churned_users", "users whose silence reached the churned cut in the period (entering churned)", "users",
        additive=True),
    Kpi("avg_daily_active", "mean over the period's days of the day's active users", "users"),
    Kpi("stickiness", "mean daily active users over the period's active users (DAU/MAU for a month)", "ratio"),
    Kpi("buyers", "users with a purchase in the period", "users", additive=True),
    Kpi("paying_rate", "buyers over active users", "ratio"),
    Kpi("orders", "purchases (the lines of one order count once)", "orders", additive=True),
    Kpi("revenue", "purchase amounts minus refund amounts", "currency", additive=True),
    Kpi("arpu", "revenue per active user", "currency"),
    Kpi("arppu", "revenue per buyer", "currency"),
    Kpi("aov", "revenue per order (net of refunds)", "currency"),
    Kpi("orders_per_buyer", "orders over buyers", "orders"),
    Kpi("view_users", "users with a view", "users", additive=True),
    Kpi("cart_users", "users with an add to cart", "users", additive=True),
    Kpi("view_to_cart", "users who viewed and added to cart, over users who viewed", "ratio"),
    Kpi("cart_to_purchase", "users who added to cart and bought, over users who added to cart", "ratio"),
    Kpi("push_open_rate", "push opens over pushes sent", "ratio"),
)
"""Every KPI a table holds, in column order (after ``period``, ``days`` and ``complete``)."""


# --------------------------------------------------------------------------- business days


def utc_offsets(tz: str, start: pd.Timestamp, end: pd.Timestamp) -> list[tuple[pd.Timestamp | None, int]]:
    """``tz``'s UTC offset in seconds over ``[start, end]``: ``(from, offset)`` segments, the
    first from None (the beginning of time). Hourly resolution: every zone in use changes
    offset on the hour or half hour."""
    hours = pd.date_range(pd.Timestamp(start).floor("h") - pd.Timedelta(hours=1),
                          pd.Timestamp(end).ceil("h") + pd.Timedelta(hours=1), freq="30min", tz="UTC")
    off = np.array([h.tz_convert(tz).utcoffset().total_seconds() for h in hours], dtype=int)
    cuts: list[tuple[pd.Timestamp | None, int]] = [(None, int(off[0]))]
    for i in np.flatnonzero(np.diff(off)) + 1:
        cuts.append((hours[i], int(off[i])))
    return cuts


def business_day(tz: str, start: pd.Timestamp, end: pd.Timestamp):
    """``ts -> its day in tz`` as an Ibis expression (a midnight label), portable: a chain of
    literal offsets, one per period between the zone's changes of offset in the data's range."""
    if tz == "UTC":
        return lambda ts: ts.truncate("D")
    cuts = utc_offsets(tz, start, end)

    def day(ts: ir.TimestampValue) -> ir.TimestampValue:
        shifted = ts + ibis.interval(seconds=cuts[0][1])
        for since, seconds in cuts[1:]:
            shifted = ibis.ifelse(ts >= ibis.timestamp(since.to_pydatetime()), ts + ibis.interval(seconds=seconds), shifted)
        return shifted.truncate("D")

    return day


# --------------------------------------------------------------------------- tables


def kpi_daily(events: ir.Table, include: list[str] | None, exclude: list[str], tz: str,
              start: pd.Timestamp, end: pd.Timestamp) -> ir.Table:
    """The daily user table with days in the business time zone ``tz``."""
    return daily_table(events, include, exclude, day=business_day(tz, start, end))


def period_start(day: ir.TimestampValue, grain: Grain) -> ir.TimestampValue:
    return day.truncate(_UNIT[grain])


@dataclass(frozen=True)
class StageCutDays:
    """The lifecycle cuts the stage flows use, in days (from the scoring stages' cuts):
    a user is *silent* once quiet for more than ``silent``, *churned* once quiet for at
    least ``churned``. Flows use the silent floor only (not the user's own rhythm)."""

    silent: float
    churned: float


_MEASURES = ("n_activity", "n_purchase", "revenue", "n_view", "n_add_to_cart", "n_push_sent", "n_push_open",
             "gap_days")


def _transitions(daily: ir.Table, cuts: StageCutDays, base: ir.Table) -> ir.Table:
    """Rows shaped like ``base`` for the days a user's silence passes each cut (``went_silent``,
    ``churned``); only days up to the data's last day: later ones are not known yet."""
    a = daily.filter(daily.n_activity > 0).select("user_id", "day")
    a = a.mutate(next_day=a.day.lead().over(ibis.window(group_by=a.user_id, order_by=a.day)))
    parts = []
    for flag, after in (("went_silent", int(np.floor(cuts.silent)) + 1), ("churned", int(np.ceil(cuts.churned)))):
        at = a.day + ibis.interval(days=after)
        t = a.filter(a.next_day.isnull() | (a.next_day >= at)).mutate(day=at)
        zeros = {c: ibis.literal(0).cast(base.schema()[c]) for c in _MEASURES if c != "gap_days"}
        parts.append(t.select(
            "user_id", day=t.day.cast(base.schema()["day"]), **zeros, gap_days=ibis.null(base.schema()["gap_days"]),
            went_silent=ibis.literal(flag == "went_silent"), churned=ibis.literal(flag == "churned")))
    out = parts[0].union(parts[1])
    return out.filter(out.day <= daily.day.max())


def user_periods(daily: ir.Table, grain: Grain, cuts: StageCutDays) -> ir.Table:
    """One row per (period, user) with anything in the period: what the user did, the stage
    moves (went silent, churned, came back from silent or churned), and the parts of their
    state at the period's start (see :func:`period_states`)."""
    base = daily.select("user_id", "day", *_MEASURES, went_silent=ibis.literal(False), churned=ibis.literal(False))
    d = base.union(_transitions(daily, cuts, base))
    d = d.mutate(period=period_start(d.day, grain))
    active = d.n_activity > 0
    bought = d.n_purchase > 0
    first = d.filter(active).group_by("user_id").aggregate(first_active_day=d.filter(active).day.min())
    gap = d.gap_days
    up = d.group_by(["period", "user_id"]).aggregate(
        active=active.any(),
        active_days=active.sum(),
        bought=bought.any(),
        orders=d.n_purchase.sum(),
        revenue=d.revenue.sum(),
        viewed=(d.n_view > 0).any(),
        carted=(d.n_add_to_cart > 0).any(),
        push_sent=d.n_push_sent.sum(),
        push_open=d.n_push_open.sum(),
        went_silent=d.went_silent.any(),
        churned=d.churned.any(),
        reactivated=(active & (gap > cuts.silent) & (gap < cuts.churned)).any(),
        resurrected=(active & (gap >= cuts.churned)).any(),
        last_active_day=d.day.max(where=active),
        last_gap_key=_gap_key(d.day, gap).max(where=active),
        gap_sum=gap.sum(where=active),
        gap_n=gap.count(where=active),
        last_purchase_day=d.day.max(where=bought),
    )
    up = up.left_join(first, "user_id").drop("user_id_right")
    return up.mutate(new=up.active & (period_start(up.first_active_day, grain) == up.period))


def _gap_key(day: ir.TimestampValue, gap: ir.FloatingValue) -> ir.IntegerValue:
    """The gap ending at the latest active day, as one orderable number (day x 10^6 + gap):
    its max over earlier periods is the gap of the last active day before a period."""
    return (day.epoch_seconds() // 86400).cast("int64") * 1_000_000 + gap.fill_null(-1).round().cast("int64")


def period_states(up: ir.Table) -> ir.Table:
    """Each (period, user) row's state at the period's start, as the feature columns the
    lifecycle stages and RFM tiers read (so a KPI segment is the stage or tier scoring would
    give at that date): days since the last active day and purchase before the period,
    typical and last gap, days since the first active day (0 for a user new in the period),
    purchases and net revenue before it."""
    before = ibis.window(group_by=up.user_id, order_by=up.period, rows=(None, -1))
    s = up.mutate(
        _last=up.last_active_day.max().over(before),
        _key=up.last_gap_key.max().over(before),
        _gap_sum=up.gap_sum.sum().over(before),
        _gap_n=up.gap_n.sum().over(before),
        _bought=up.last_purchase_day.max().over(before),
        _orders=up.orders.sum().over(before),
        _revenue=up.revenue.sum().over(before),
    )
    last_gap = (s._key % 1_000_000).cast("float64")
    first = ibis.ifelse(s.first_active_day < s.period, s.first_active_day, ibis.null(s.period.type()))
    return s.select(
        "period", "user_id",
        **{
            rfm.DAYS_SINCE_LAST_ACTIVITY.name: days_between(s.period, s._last),
            gaps.GAP_MEAN_DAYS.name: ratio(s._gap_sum, s._gap_n),
            gaps.LAST_GAP_DAYS.name: ibis.ifelse(last_gap >= 0, last_gap, ibis.null("float64")),
            rfm.DAYS_SINCE_FIRST_ACTIVITY.name: days_between(s.period, first).fill_null(0.0),
            rfm.DAYS_SINCE_LAST_PURCHASE.name: days_between(s.period, s._bought),
            rfm.PURCHASES_TOTAL.name: s._orders.cast("float64").fill_null(0.0),
            rfm.REVENUE_TOTAL.name: s._revenue.cast("float64").fill_null(0.0),
        },
    )


def kpi_table(up: ir.Table, segments: ir.Table | None = None) -> ir.Table:
    """One row per period (and ``segment``, when ``segments`` gives one per user, or per
    period and user): ``period`` (its first day) and every :data:`KPIS` column, plus the
    totals the ratios were taken from (see :data:`_PARTS`)."""
    u = up
    keys = ["period"]
    if segments is not None:
        on = [c for c in ("period", "user_id") if c in segments.columns]
        segs = segments.mutate(period=segments.period.cast(up.period.type())) if "period" in on else segments
        u = up.left_join(segs, on)
        u = u.drop(*[c for c in u.columns if c.endswith("_right")]).mutate(segment=u.segment.fill_null("unknown"))
        keys.append("segment")
    agg = u.group_by(keys).aggregate(
        active_users=u.active.sum().cast("float64"),
        new_users=u.new.sum().cast("float64"),
        resurrected_users=u.resurrected.sum().cast("float64"),
        reactivated_users=u.reactivated.sum().cast("float64"),
        went_silent_users=u.went_silent.sum().cast("float64"),
        churned_users=u.churned.sum().cast("float64"),
        active_user_days=u.active_days.sum().cast("float64"),
        buyers=u.bought.sum().cast("float64"),
        orders=u.orders.sum().cast("float64"),
        revenue=u.revenue.sum().cast("float64"),
        view_users=u.viewed.sum().cast("float64"),
        cart_users=u.carted.sum().cast("float64"),
        viewed_and_carted=(u.viewed & u.carted).sum().cast("float64"),
        carted_and_bought=(u.carted & u.bought).sum().cast("float64"),
        push_sent=u.push_sent.sum().cast("float64"),
        push_open=u.push_open.sum().cast("float64"),
    )
    return agg.mutate(
        returning_users=agg.active_users - agg.new_users,
        paying_rate=ratio(agg.buyers, agg.active_users),
        arpu=ratio(agg.revenue, agg.active_users),
        arppu=ratio(agg.revenue, agg.buyers),
        aov=ratio(agg.revenue, agg.orders),
        orders_per_buyer=ratio(agg.orders, agg.buyers),
        view_to_cart=ratio(agg.viewed_and_carted, agg.view_users),
        cart_to_purchase=ratio(agg.carted_and_bought, agg.cart_users),
        push_open_rate=ratio(agg.push_open, agg.push_sent),
    )


_PARTS = ("active_user_days", "viewed_and_carted", "carted_and_bought", "push_sent", "push_open")
"""Totals the ratios are taken from."""


def finish(table: pd.DataFrame, grain: Grain, first_day: dt.date, last_complete_day: dt.date) -> pd.DataFrame:
    """Executed :func:`kpi_table` rows as the published table: every period from the data's
    first to its last day (periods without activity are zeros, not missing rows), the days
    each period covers in the data, ``complete``, the daily mean and stickiness, KPI order.

    ``last_complete_day``: the last day the data covers entirely (the day before the as-of
    date); a period ending after it is still in progress.
    """
    t = table.copy()
    t["period"] = pd.to_datetime(t["period"]).dt.tz_localize(None).dt.normalize()
    first = pd.Timestamp(first_day)
    last = pd.Timestamp(last_complete_day)
    starts = pd.period_range(first, last, freq=_UNIT[grain] if grain != "week" else "W-SUN").start_time.normalize()
    t = t.set_index("period").reindex(starts).rename_axis("period").reset_index()
    totals = [k.name for k in KPIS if k.additive and k.name in t.columns] + list(_PARTS)
    t[totals] = t[totals].fillna(0.0)
    ends = t["period"].map(lambda start: period_after(start, 1, grain))
    t["complete"] = ends <= last + pd.Timedelta(days=1)
    covered_from = t["period"].clip(lower=first)
    t["days"] = ((ends.clip(upper=last + pd.Timedelta(days=1)) - covered_from).dt.days).astype("int64")
    t["avg_daily_active"] = t["active_user_days"] / t["days"]
    t["stickiness"] = np.where(t["active_users"] > 0, t["avg_daily_active"] / t["active_users"].where(t["active_users"] > 0), np.nan)
    t["period"] = t["period"].dt.date
    return t[["period", "days", "complete", *(k.name for k in KPIS)]]


def finish_segments(table: pd.DataFrame, dimension: str, grain: Grain, first_day: dt.date,
                    last_complete_day: dt.date) -> pd.DataFrame:
    """:func:`finish` per segment of one ``dimension``: a long table with ``dimension`` and
    ``segment`` first; every segment has every period (zeros where it had nobody)."""
    parts = [finish(g.drop(columns="segment"), grain, first_day, last_complete_day).assign(segment=str(seg))
             for seg, g in table.groupby("segment", sort=True, dropna=False)]
    cols = ["dimension", "segment", "period", "days", "complete", *(k.name for k in KPIS)]
    if not parts:
        return pd.DataFrame(columns=cols)
    return pd.concat(parts, ignore_index=True).assign(dimension=dimension)[cols]


def period_after(start: pd.Timestamp, n: int, grain: Grain) -> pd.Timestamp:
    """The start of the ``n``-th ``grain`` period after the one starting at ``start``."""
    if grain == "month":
        return start + pd.DateOffset(months=n)
    return start + pd.Timedelta(days=n * (7 if grain == "week" else 1))
