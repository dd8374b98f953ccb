"""Retention cohorts: users grouped by when they started, followed period by period.

A cohort is the users whose start (first active day, first purchase, or signup) falls in
one day, week or month of the business calendar; period ``k`` is the ``k``-th day, week or
month after it (0: the cohort's own). For each cohort and ``k`` the table holds:

- ``retained``: users who did the measure (any activity, or a purchase) *in* period k
  (N-day / N-week / N-month retention);
- ``retained_on_or_after``: users who did it in period k or any later one the data holds
  (unbounded retention: the share not yet lost);
- ``revenue``: the cohort's net revenue in period k (revenue retention, per cohort user).

Computed with the KPI tables' daily user table (the features' activity rule, orders
counted once, revenue net of refunds), as Ibis expressions. A (cohort, k) cell whose period
ends after the data's last complete day is ``complete = False``; the size-weighted average
over cohorts (:func:`average_retention`) uses complete cells only and skips empty cohorts.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churnkit.monitor.kpis import Grain, period_after, period_start

Start = Literal["first_active", "first_purchase", "signup"]
Measure = Literal["active", "purchase"]


def _index(cohort: ir.TimestampValue, period: ir.TimestampValue, grain: Grain) -> ir.IntegerValue:
    """How many ``grain`` periods ``period`` lies after ``cohort`` (both period starts)."""
    if grain == "month":
        return ((period.year() - cohort.year()) * 12 + period.month() - cohort.month()).cast("int64")
    days = ((period.epoch_seconds() - cohort.epoch_seconds()) / 86400.0).round().cast("int64")
    return days if grain == "day" else (days / 7).floor().cast("int64")


def cohort_cells(daily: ir.Table, grain: Grain, start: Start = "first_purchase", measure: Measure = "purchase",
                 signups: ir.Table | None = None) -> tuple[ir.Table, ir.Table, ir.Table]:
    """Three small tables to execute: cohort sizes, per (cohort, k) users and revenue, and
    per (cohort, last k) users (for unbounded retention)."""
    did = daily.n_purchase > 0 if measure == "purchase" else daily.n_activity > 0
    if start == "signup":
        if signups is None:
            raise ValueError("signup cohorts need the users table's signup_ts")
        first = signups.select("user_id", start_day=signups.signup_day)
    else:
        began = daily.n_purchase > 0 if start == "first_purchase" else daily.n_activity > 0
        b = daily.filter(began)
        first = b.group_by("user_id").aggregate(start_day=b.day.min())
    first = first.mutate(cohort=period_start(first.start_day, grain))
    sizes = first.group_by("cohort").aggregate(size=first.user_id.count())
    d = daily.inner_join(first, "user_id")
    d = d.mutate(k=_index(d.cohort, period_start(d.day, grain), grain), did=did)
    d = d.filter(d.day >= d.start_day)
    cells = d.group_by(["cohort", "k"]).aggregate(
        retained=d.user_id.nunique(where=d.did),
        revenue=d.revenue.sum().cast("float64"),
    )
    done = d.filter(d.did)
    last = done.group_by(["cohort", "user_id"]).aggregate(last_k=done.k.max())
    lasts = last.group_by(["cohort", "last_k"]).aggregate(users=last.user_id.count())
    return sizes, cells, lasts


def cohort_table(sizes: pd.DataFrame, cells: pd.DataFrame, lasts: pd.DataFrame, grain: Grain,
                 last_complete_day: dt.date) -> pd.DataFrame:
    """The long cohort table from the executed parts: one row per cohort and period ``k``
    from 0 to the last the data reaches, rates per cohort user, ``complete`` per cell."""
    end = pd.Timestamp(last_complete_day) + pd.Timedelta(days=1)
    rows = []
    sizes, cells, lasts = (t.assign(cohort=pd.to_datetime(t["cohort"]).dt.tz_localize(None).dt.normalize())
                           for t in (sizes, cells, lasts))
    cells = cells.set_index(["cohort", "k"])
    for cohort, size in sizes.set_index("cohort")["size"].sort_index().items():
        ks = _reached(cohort, end, grain)
        ls = lasts[lasts["cohort"] == cohort].set_index("last_k")["users"]
        for k in range(ks):
            got = cells.loc[(cohort, k)] if (cohort, k) in cells.index else None
            rows.append({
                "cohort": cohort.date(), "k": k, "size": int(size),
                "retained": int(got["retained"]) if got is not None else 0,
                "retained_on_or_after": int(ls[ls.index >= k].sum()),
                "revenue": float(got["revenue"]) if got is not None else 0.0,
                "complete": period_after(cohort, k + 1, grain) <= end,
            })
    t = pd.DataFrame(rows, columns=["cohort", "k", "size", "retained", "retained_on_or_after", "revenue", "complete"])
    t["retention"] = t["retained"] / t["size"]
    t["retention_on_or_after"] = t["retained_on_or_after"] / t["size"]
    t["revenue_per_user"] = t["revenue"] / t["size"]
    return t


def average_retention(table: pd.DataFrame) -> pd.DataFrame:
    """Per ``k``: the size-weighted mean retention over cohorts whose cell is complete and
    not empty (a cohort that has not reached k yet does not pull the mean down)."""
    t = table[table["complete"] & (table["size"] > 0)]
    g = t.groupby("k")
    out = pd.DataFrame({
        "cohorts": g.size(),
        "users": g["size"].sum(),
        "retention": g["retained"].sum() / g["size"].sum(),
        "retention_on_or_after": g["retained_on_or_after"].sum() / g["size"].sum(),
        "revenue_per_user": g["revenue"].sum() / g["size"].sum(),
    })
    return out.reset_index()


def heatmap(table: pd.DataFrame, value: str = "retention") -> pd.DataFrame:
    """Cohorts x k, ``value`` where the cell is complete (blank otherwise): the matrix a
    heatmap draws."""
    t = table.assign(v=np.where(table["complete"], table[value], np.nan))
    return t.pivot(index="cohort", columns="k", values="v")


def _reached(cohort: pd.Timestamp, end: pd.Timestamp, grain: Grain) -> int:
    """How many periods from the cohort's start begin before the data end."""
    n = 0
    while period_after(cohort, n, grain) < end:
        n += 1
    return n


def signup_days(users: ir.Table, day) -> ir.Table:
    """Users with a signup time, their signup day in the business calendar (``day``: the
    KPI tables' ts -> day mapping)."""
    u = users.filter(users.signup_ts.notnull())
    return u.select("user_id", signup_day=day(u.signup_ts))
