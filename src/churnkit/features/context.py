"""The tables every feature family reads, built once per build.

Events are first reduced to one row per user and day (``daily``) in a single pass; a
training set over many cutoffs then joins that much smaller table to the cutoff grid with
a range condition (``day < cutoff``) instead of scanning the events once per cutoff.

Point in time: cutoffs are midnights (UTC), so "ts < cutoff" is exactly "day < cutoff".
Values attached to a daily row (gap to the previous active day, first-purchase-day flag)
depend only on that day and earlier ones, so no row carries information from its future.

Orders and refunds: ``n_purchase`` counts orders, so the lines of one order (one
``order_id``) are one purchase, and each purchase without an order id is one purchase, as
in logs that have none. An order whose lines fall on two days counts on each (order lines
share a timestamp in the logs seen so far). ``revenue`` is purchase amounts minus refund
amounts, so it is net of refunds (and negative on a day with refunds and no purchases).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import ibis
import ibis.expr.types as ir
import pandas as pd

from churnkit.contracts import EVENT_TYPES, PURCHASE, REFUND

SECONDS_PER_DAY = 86400.0


def seconds(ts: ir.TimestampValue) -> ir.FloatingValue:
    """Whole epoch seconds as float64: identical on DuckDB and Spark (which floors)."""
    return ts.truncate("s").epoch_seconds().cast("float64")


def days_between(later: ir.TimestampValue, earlier: ir.TimestampValue) -> ir.FloatingValue:
    return (seconds(later) - seconds(earlier)) / SECONDS_PER_DAY


def is_activity(event: ir.StringValue, include: list[str] | None, exclude: list[str]) -> ir.BooleanValue:
    cond = event.notnull()
    if include is not None:
        cond = cond & event.isin(include)
    if exclude:
        cond = cond & ~event.isin(exclude)
    return cond


def daily_table(
    events: ir.Table, include: list[str] | None, exclude: list[str],
    day: Callable[[ir.TimestampValue], ir.TimestampValue] | None = None,
) -> ir.Table:
    """One row per (user, day with any event): counts by type, activity, revenue, times.

    ``day`` maps an event time to its day (default: the UTC day, which features use: their
    cutoffs are UTC midnights); the KPIs pass the business time zone's day.
    """
    e = events.mutate(day=(day or (lambda ts: ts.truncate("D")))(events.ts),
                      act=is_activity(events.event, include, exclude))
    purchase = e.event == PURCHASE
    aggs: dict[str, ir.Value] = {f"n_{t}": e.event.count(where=e.event == t) for t in EVENT_TYPES}
    aggs |= {
        f"n_{PURCHASE}": e.event.count(where=purchase & e.order_id.isnull())
        + e.order_id.nunique(where=purchase),
        "n_activity": e.event.count(where=e.act),
        "n_campaign_push": e.event.count(where=(e.event == "push_sent") & e.campaign_id.notnull()),
        "revenue": _amount(e, purchase) - _amount(e, e.event == REFUND),
        "last_activity_ts": e.ts.max(where=e.act),
        "last_purchase_ts": e.ts.max(where=purchase),
        "last_push_open_ts": e.ts.max(where=e.event == "push_open"),
        "last_campaign_ts": e.ts.max(where=(e.event == "push_sent") & e.campaign_id.notnull()),
        "first_ts": e.ts.min(),
    }
    d = e.group_by(["user_id", "day"]).aggregate(**aggs)
    d = d.mutate(active=d.n_activity > 0)
    # The previous active day is a lag within (user, active?) partitions: a plain lag is a
    # streaming window, where a framed max over all earlier rows needs a segment tree.
    by_kind = ibis.window(group_by=[d.user_id, d.active], order_by=d.day)
    d = d.mutate(prev_day=d.day.lag().over(by_kind))
    bought = d.filter(d.n_purchase > 0)
    first = bought.group_by("user_id").aggregate(first_purchase_day=bought.day.min())
    d = d.left_join(first, "user_id")
    return d.mutate(
        gap_days=ibis.ifelse(d.active, days_between(d.day, d.prev_day), ibis.null("float64")),
        is_first_purchase_day=(d.n_purchase > 0) & (d.day == d.first_purchase_day),
    ).drop("prev_day", "first_purchase_day", "active")


def _amount(e: ir.Table, where: ir.BooleanValue) -> ir.FloatingValue:
    """Sum of the amounts of the day's matching events, 0.0 when there are none."""
    return e.amount.sum(where=where & e.amount.notnull()).cast("float64").fill_null(0.0)


def cutoff_table(cutoffs: list) -> ir.Table:
    """Cutoffs as UTC midnights in a memtable (dates or date-like values)."""
    values = pd.to_datetime(pd.Series(sorted({pd.Timestamp(c).date() for c in cutoffs}))).dt.tz_localize("UTC")
    return ibis.memtable(pd.DataFrame({"cutoff": values.astype("datetime64[us, UTC]")}))


@dataclass
class Context:
    """Inputs of the families, with helpers that name aggregates canonically."""

    events: ir.Table
    daily: ir.Table
    cutoffs: ir.Table
    users: ir.Table | None
    hist: ir.Table = field(init=False)

    def __post_init__(self) -> None:
        d, c = self.daily, self.cutoffs
        joined = d.join(c, d.day < c.cutoff)
        self.hist = joined.mutate(age=days_between(joined.cutoff, joined.day))

    def _where(self, window: int | None) -> ir.BooleanValue | None:
        return None if window is None else self.hist.age <= window

    def wsum(self, col: str, window: int | None = None) -> tuple[str, ir.Value]:
        """Sum of a daily column over ``[cutoff - window days, cutoff)`` (None: all history)."""
        name = f"sum_{col}_{window or 'all'}"
        return name, self.hist[col].sum(where=self._where(window)).cast("float64")

    def wdays(self, col: str, window: int | None = None) -> tuple[str, ir.Value]:
        """Number of days with a positive daily column in the window."""
        name = f"days_{col}_{window or 'all'}"
        cond = self.hist[col] > 0
        w = self._where(window)
        return name, self.hist[col].count(where=cond if w is None else cond & w).cast("float64")

    def wmax(self, col: str, window: int | None = None) -> tuple[str, ir.Value]:
        name = f"max_{col}_{window or 'all'}"
        return name, self.hist[col].max(where=self._where(window))

    def wmin(self, col: str, window: int | None = None) -> tuple[str, ir.Value]:
        name = f"min_{col}_{window or 'all'}"
        return name, self.hist[col].min(where=self._where(window))

    def first_active_day(self) -> tuple[str, ir.Value]:
        return "first_active_day", self.hist.day.min(where=self.hist.n_activity > 0)


def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """num / den as float64, null where the denominator is zero or null."""
    return ibis.ifelse(den > 0, num.cast("float64") / den.cast("float64"), ibis.null("float64"))


def zero_if_null(v: ir.NumericValue) -> ir.FloatingValue:
    return v.cast("float64").fill_null(0.0)
