"""The tables every feature family reads, built once per build.

Events are first reduced to one row per user and day (``daily``, days as integer day
numbers) in a single pass; the per-(user, cutoff) aggregates then read that much smaller
table through :meth:`Context.aggregate`, which takes each aggregate over parts (stretches
between cutoffs, bands of age) once and combines them, instead of joining every day to
every later cutoff or scanning the events once per cutoff.

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

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import ibis
import ibis.expr.datatypes as dt
import ibis.expr.types as ir
import pandas as pd
from ibis.common.exceptions import IbisError

from churnkit.contracts import EVENT_TYPES, PURCHASE, REFUND

SECONDS_PER_DAY = 86400.0


def seconds(ts: ir.TimestampValue) -> ir.FloatingValue:
    """Whole epoch seconds as float64: identical on DuckDB and Spark (which floors).

    Where DuckDB runs it (:func:`builtin_epoch`), the floor of its ``epoch``: Ibis's
    truncate-then-``epoch_seconds`` converts through ICU twice per value, ~30x the cost,
    which the final select paid for every day count of every (user, cutoff) row. The
    floor of ``epoch`` (microseconds / 1e6 as a double) is the same whole second for
    every time before 2242 (half the double's spacing stays under a microsecond).
    """
    if builtin_epoch(ts):
        return _duckdb_epoch(ts).floor().cast("float64")
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


@ibis.udf.scalar.builtin(name="epoch")
def _duckdb_epoch(ts: dt.Timestamp(timezone="UTC")) -> dt.float64:  # type: ignore[valid-type]
    """DuckDB's ``epoch(TIMESTAMPTZ)``: seconds since 1970 UTC, straight from the stored
    microseconds (Ibis's ``epoch_seconds`` first casts to a naive TIMESTAMP, a time-zone
    conversion through ICU that costs ten times more per event)."""


def on_duckdb(events: ir.Table) -> bool:
    """Whether ``events`` are DuckDB's (a table there, or in-memory ones the default DuckDB
    runs): decided from the events, never from a small table such as the cutoffs, which
    has no engine of its own."""
    try:
        return ibis.get_backend(events).name == "duckdb"
    except IbisError:  # no single engine: the portable expression
        return False


def builtin_epoch(ts: ir.TimestampValue) -> bool:
    """Whether ``ts`` (a UTC timestamp) can be read with DuckDB's ``epoch``: its table's
    engine is DuckDB (:func:`on_duckdb`); other engines keep the portable expression."""
    if getattr(ts.type(), "timezone", None) != "UTC":
        return False
    rel = getattr(ts.op(), "rel", None)  # a column of a table: decided once per table
    return _relation_on_duckdb(rel) if rel is not None else on_duckdb(ts)  # type: ignore[arg-type]


@functools.lru_cache(maxsize=64)
def _relation_on_duckdb(rel: object) -> bool:
    """:func:`on_duckdb` per table (relation op): finding the engine walks the expression,
    and the final select asks for each of its day counts."""
    return on_duckdb(rel.to_expr())  # type: ignore[attr-defined]


def day_number(ts: ir.TimestampValue, duckdb: bool = False) -> ir.IntegerValue:
    """Whole days since 1970-01-01 UTC: an integer key is cheaper to group, sort and join
    than a truncated TIMESTAMPTZ (DuckDB truncates those through ICU, per event).

    The same floor of the same seconds on every engine; with ``duckdb`` (see
    :func:`on_duckdb`) DuckDB reads the seconds without a cast.
    """
    secs = _duckdb_epoch(ts) if duckdb else ts.epoch_seconds()
    return (secs // 86400).cast("int32")


def day_start(n: ir.IntegerValue) -> ir.TimestampValue:
    """The UTC midnight of day number ``n`` (the inverse of :func:`day_number`)."""
    return (n.cast("int64") * 86400).as_timestamp("s").cast("timestamp('UTC')")


def _day_aggregates(e: ir.Table) -> dict[str, ir.Value]:
    """Per (user, day) counts by type, activity, revenue and times (``e`` has ``act``)."""
    purchase = e.event == PURCHASE
    aggs: dict[str, ir.Value] = {f"n_{t}": e.event.count(where=e.event == t) for t in EVENT_TYPES}
    return aggs | {
        f"n_{PURCHASE}": e.event.count(where=purchase & e.order_id.isnull()),  # + orders: see _by_day
        "n_activity": e.event.count(where=e.act),
        "n_campaign_push": e.event.count(where=(e.event == "push_sent") & e.campaign_id.notnull()),
        "revenue": _amount(e, purchase) - _amount(e, e.event == REFUND),
        "last_activity_ts": e.ts.max(where=e.act),
        "last_purchase_ts": e.ts.max(where=purchase),
        "last_push_open_ts": e.ts.max(where=e.event == "push_open"),
        "last_campaign_ts": e.ts.max(where=(e.event == "push_sent") & e.campaign_id.notnull()),
        "first_ts": e.ts.min(),
    }


def _by_day(events: ir.Table, key: str, day: Callable[[ir.TimestampValue], ir.Value],
            act: ir.Deferred) -> ir.Table:
    """Events grouped by (user, day): ``key`` = ``day(ts)``, ``act`` whether one is activity.

    A purchase with an order id counts once per order: the distinct order ids are counted
    on the purchase rows alone and joined on, since a COUNT(DISTINCT) among the day's other
    aggregates makes DuckDB materialise every event for a second grouping. Both sides
    derive the day from ``events`` themselves: sharing one derived table makes DuckDB
    materialise it instead.
    """
    e = events.mutate(**{key: day(events.ts)}, act=act)
    d = e.group_by(["user_id", key]).aggregate(**_day_aggregates(e))
    p = events.filter((events.event == PURCHASE) & events.order_id.notnull())
    orders = p.group_by(o__user=p.user_id, o__day=day(p.ts)).aggregate(o__n=p.order_id.nunique())
    j = d.left_join(orders, (d.user_id == orders.o__user) & (d[key] == orders.o__day))
    return j.mutate(n_purchase=j.n_purchase + j.o__n.fill_null(0)).select(*d.columns)


def _with_gaps(d: ir.Table, key: str, gap: Callable[[ir.Value, ir.Value], ir.FloatingValue]) -> ir.Table:
    """Add ``gap_days`` (days since the previous active day, on active days) and
    ``is_first_purchase_day`` to a daily table ordered by its day column ``key``."""
    d = d.mutate(active=d.n_activity > 0)
    # The previous active day is a lag within (user, active?) partitions: a plain lag is a
    # streaming window, where a framed max over all earlier rows needs a segment tree.
    by_kind = ibis.window(group_by=[d.user_id, d.active], order_by=d[key])
    d = d.mutate(prev_day=d[key].lag().over(by_kind))
    bought = d.filter(d.n_purchase > 0)
    first = bought.group_by("user_id").aggregate(first_purchase_day=bought[key].min())
    d = d.left_join(first, "user_id")
    return d.mutate(
        gap_days=ibis.ifelse(d.active, gap(d[key], d.prev_day), ibis.null("float64")),
        is_first_purchase_day=(d.n_purchase > 0) & (d[key] == d.first_purchase_day),
    ).drop("prev_day", "first_purchase_day", "active")


def daily_table(
    events: ir.Table, include: list[str] | None, exclude: list[str],
    day: Callable[[ir.TimestampValue], ir.TimestampValue] | None = None,
) -> ir.Table:
    """One row per (user, day with any event): counts by type, activity, revenue, times.

    ``day`` maps an event time to its day (default: the UTC day, which features use: their
    cutoffs are UTC midnights); the KPIs pass the business time zone's day. The features
    read :func:`feature_daily`, the same table keyed by day numbers.
    """
    d = _by_day(events, "day", day or (lambda ts: ts.truncate("D")), is_activity(ibis._.event, include, exclude))
    return _with_gaps(d, "day", days_between)


def feature_daily(events: ir.Table, include: list[str] | None, exclude: list[str]) -> ir.Table:
    """:func:`daily_table` for UTC days, keyed by the integer ``day_n`` (:func:`day_number`),
    with ``day`` (its midnight) added after the aggregation: same rows and values, but no
    timestamp truncation per event and integer joins and windows downstream."""
    duckdb = on_duckdb(events)
    d = _by_day(events, "day_n", lambda ts: day_number(ts, duckdb), is_activity(ibis._.event, include, exclude))
    d = _with_gaps(d, "day_n", lambda later, earlier: (later - earlier).cast("float64"))
    return d.mutate(day=day_start(d.day_n))


def _amount(e: ir.Table, where: ir.BooleanValue) -> ir.FloatingValue:
    """Sum of the amounts of the day's matching events, 0.0 when there are none."""
    return e.amount.sum(where=where & e.amount.notnull()).cast("float64").fill_null(0.0)


def cutoff_table(cutoffs: list) -> ir.Table:
    """Cutoffs as UTC midnights in a memtable (dates or date-like values)."""
    values = pd.to_datetime(pd.Series(sorted({pd.Timestamp(c).date() for c in cutoffs}))).dt.tz_localize("UTC")
    return ibis.memtable(pd.DataFrame({"cutoff": values.astype("datetime64[us, UTC]")}))


How = Literal["sum", "count", "max", "min"]


@dataclass(frozen=True)
class Agg:
    """One per-(user, cutoff) aggregate of the daily rows before the cutoff.

    Declared rather than built, so :meth:`Context.aggregate` can plan it: sum, count, max
    and min decompose, so each is taken over parts (stretches between cutoffs, bands of
    age) once and the parts are combined. ``count`` counts rows where ``where`` holds (0 when none); the others
    ignore nulls and are null when no row qualifies, as SQL aggregates are.
    """

    how: How
    value: Callable[[ir.Table], ir.Value]
    where: Callable[[ir.Table], ir.BooleanValue] | None = None
    window: int | None = None
    """Days before the cutoff (age = cutoff day - day <= window); None: all history."""
    float64: bool = False
    """Cast the result to float64."""

    def over(self, t: ir.Table) -> ir.Value:
        """The aggregate over all rows of ``t`` (a daily-like table), window aside."""
        return getattr(self.value(t), self.how)(where=None if self.where is None else self.where(t))

    def combine(self, partial: ir.Value, where: ir.BooleanValue | None = None) -> ir.Value:
        """The aggregate of partial results (one per stretch or band) into the whole."""
        return getattr(partial, "sum" if self.how in ("sum", "count") else self.how)(where=where)


def _partials(t: ir.Table, aggs: dict[str, Agg]) -> tuple[dict[str, ir.Value], dict[str, str]]:
    """Each aggregate's partial over ``t``'s rows (window ignored), shared between
    aggregates that differ only in their window: (partials by name, name per aggregate)."""
    exprs: dict[str, ir.Value] = {}
    by_op: dict[object, str] = {}
    names: dict[str, str] = {}
    for k, a in aggs.items():
        e = a.over(t)
        names[k] = by_op.setdefault(e.op(), f"p{len(by_op)}")
        exprs.setdefault(names[k], e)
    return exprs, names


@dataclass
class Context:
    """Inputs of the families, with helpers that declare aggregates under canonical names.

    ``daily`` is :func:`feature_daily` (integer ``day_n``); ``cutoffs`` are UTC midnights.
    """

    events: ir.Table
    daily: ir.Table
    cutoffs: ir.Table
    users: ir.Table | None
    duckdb: bool = False
    """The events are DuckDB's (:func:`on_duckdb`): day numbers without a cast."""

    def day(self, ts: ir.TimestampValue) -> ir.IntegerValue:
        """:func:`day_number` for this build's engine."""
        return day_number(ts, self.duckdb)

    def wsum(self, col: str, window: int | None = None) -> tuple[str, Agg]:
        """Sum of a daily column over ``[cutoff - window days, cutoff)`` (None: all history)."""
        return f"sum_{col}_{window or 'all'}", Agg("sum", _col(col), window=window, float64=True)

    def wdays(self, col: str, window: int | None = None) -> tuple[str, Agg]:
        """Number of days with a positive daily column in the window."""
        return f"days_{col}_{window or 'all'}", Agg("count", _col(col), lambda t: t[col] > 0, window, True)

    def wmax(self, col: str, window: int | None = None) -> tuple[str, Agg]:
        return f"max_{col}_{window or 'all'}", Agg("max", _col(col), window=window)

    def wmin(self, col: str, window: int | None = None) -> tuple[str, Agg]:
        return f"min_{col}_{window or 'all'}", Agg("min", _col(col), window=window)

    def first_active_day(self) -> tuple[str, Agg]:
        """The first active day's number (see :func:`day_number`)."""
        return "first_active_day", Agg("min", _col("day_n"), lambda t: t.n_activity > 0)

    def aggregate(self, aggs: dict[str, Agg]) -> ir.Table:
        """One row per (user, cutoff) with any daily row before the cutoff, with ``aggs``.

        Rather than join every daily row to every later cutoff and aggregate ~60 filtered
        columns over that product, all-history aggregates are taken once per (user,
        stretch between consecutive cutoffs) and accumulated over the stretches up to each
        cutoff; windowed ones join only the days within the longest window. Float sums are
        added in a different order than one pass would (differences ~1e-15 relative).
        """
        d = self.daily
        c = self.cutoffs.mutate(cutoff_n=self.day(self.cutoffs.cutoff))
        history = {k: a for k, a in aggs.items() if a.window is None}
        windowed = {k: a for k, a in aggs.items() if a.window is not None}

        # each day falls in the stretch [previous cutoff, cutoff) of the first cutoff after it
        lo = c.cutoff_n.lag().over(ibis.window(order_by=c.cutoff_n))
        s = c.select(hi=c.cutoff_n, lo=lo.fill_null(_NO_DAY))
        ds = d.join(s, (d.day_n >= s.lo) & (d.day_n < s.hi))
        exprs, names = _partials(ds, history)
        part = ds.group_by(["user_id", "hi"]).aggregate(_rows=ds.count(), **exprs)
        pc = part.join(c, part.hi <= c.cutoff_n)
        main = pc.group_by(["user_id", "cutoff"]).aggregate(
            **{k: _finish(a, a.combine(pc[names[k]])) for k, a in history.items()}
        )
        if not windowed:
            return main

        # days within the longest window, in bands by age: (0, w1], (w1, w2], ... for the
        # windows asked for; partials per band, then each window sums the bands up to it
        widths = sorted({a.window for a in windowed.values()})
        dw = d.join(c, (d.day_n < c.cutoff_n) & (d.day_n >= c.cutoff_n - widths[-1]))
        age = dw.cutoff_n - dw.day_n
        dw = dw.mutate(band=ibis.cases(*[(age <= w, w) for w in widths[:-1]], else_=widths[-1]))
        exprs, names = _partials(dw, windowed)
        bands = dw.group_by(["user_id", "cutoff", "band"]).aggregate(**exprs)
        # one plain GROUP BY per window over its bands, joined on: ~45 FILTERed sums in one
        # GROUP BY cost DuckDB more (a selection vector and a scatter per aggregate)
        j = main
        for w in widths:
            b = bands.filter(bands.band <= w)
            t = b.group_by(["user_id", "cutoff"]).aggregate(
                **{k: _finish(a, a.combine(b[names[k]])) for k, a in windowed.items() if a.window == w}
            ).rename({f"w{w}__user_id": "user_id", f"w{w}__cutoff": "cutoff"})
            j = j.left_join(t, (j.user_id == t[f"w{w}__user_id"]) & (j.cutoff == t[f"w{w}__cutoff"]))
        # a (user, cutoff) without days in the longest window counts 0, as a filtered count does
        return j.select(*main.columns, **{
            k: j[k].fill_null(0.0 if a.float64 else 0) if a.how == "count" else j[k] for k, a in windowed.items()
        })


_NO_DAY = -(2**31) + 1
"""A day number before any event: the lower end of the first stretch."""


def _col(name: str) -> Callable[[ir.Table], ir.Value]:
    return lambda t: t[name]


def _finish(agg: Agg, v: ir.Value) -> ir.Value:
    return v.cast("float64") if agg.float64 else v


def days_before(cutoff: ir.TimestampValue, day_n: ir.IntegerValue) -> ir.FloatingValue:
    """Days from day number ``day_n`` to the cutoff (a midnight): :func:`days_between` of
    the two midnights, exactly (whole days)."""
    return (day_number(cutoff, builtin_epoch(cutoff)) - day_n).cast("float64")


def ratio(num: ir.NumericValue, den: ir.NumericValue) -> ir.FloatingValue:
    """num / den as float64, null where the denominator is zero or null."""
    return ibis.ifelse(den > 0, num.cast("float64") / den.cast("float64"), ibis.null("float64"))


def zero_if_null(v: ir.NumericValue) -> ir.FloatingValue:
    return v.cast("float64").fill_null(0.0)
