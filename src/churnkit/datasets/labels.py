"""Outcomes in ``[cutoff, cutoff + H)``: the only place that looks at or after a cutoff.

Labels read the same per-day table as the features, restricted to the future window;
no label ever sees an event before its cutoff. Purchases are orders and revenue is net of
refunds, as in the features; a revenue label is never below zero (see :func:`label_expr`).
"""

from __future__ import annotations

import datetime as dt
from typing import Any, Literal

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churnkit.config import ProblemConfig
from churnkit.contracts import LABEL
from churnkit.errors import ChurnkitError
from churnkit.features.context import cutoff_table, daily_table


def outcome_table(daily: ir.Table, cutoffs: ir.Table, horizon_days: int) -> ir.Table:
    """Per (user, cutoff) with any event in the window: activity, purchases and revenue."""
    c = cutoffs
    j = daily.join(c, (daily.day >= c.cutoff) & (daily.day < c.cutoff + ibis.interval(days=horizon_days)))
    return j.group_by(["user_id", "cutoff"]).aggregate(
        future_activity=j.n_activity.sum().cast("float64"),
        future_purchases=j.n_purchase.sum().cast("float64"),
        future_revenue=j.revenue.sum().cast("float64"),
    )


def label_expr(outcomes: ir.Table, kind: Literal["churn", "purchase", "revenue"]) -> ir.FloatingValue:
    """The label from (left-joined, possibly null) outcomes: no row means nothing happened.

    Revenue is net of the window's refunds but floored at zero: refunding a purchase made
    before the cutoff takes back value already counted in the features, it is not negative
    future value (and the LTV models' gamma and Tweedie losses need labels >= 0).
    """
    if kind == "churn":
        return ibis.ifelse(outcomes.future_activity.fill_null(0.0) > 0, 0.0, 1.0)
    if kind == "purchase":
        return ibis.ifelse(outcomes.future_purchases.fill_null(0.0) > 0, 1.0, 0.0)
    revenue = outcomes.future_revenue.fill_null(0.0)
    return ibis.ifelse(revenue > 0, revenue, 0.0)


def attach_labels(frame: ir.Table, daily: ir.Table, cutoffs: ir.Table, kind: str, horizon_days: int) -> ir.Table:
    """Left-join the problem's label (float64 column ``label``) onto (user, cutoff) rows."""
    o = outcome_table(daily, cutoffs, horizon_days)
    o = o.rename(o_user_id="user_id", o_cutoff="cutoff")
    j = frame.left_join(o, (frame.user_id == o.o_user_id) & (frame.cutoff == o.o_cutoff))
    return j.mutate(**{LABEL: label_expr(j, kind)}).drop(
        "o_user_id", "o_cutoff", "future_activity", "future_purchases", "future_revenue"
    )


def outcome_window_complete(as_of: dt.date, horizon_days: int, data_end: dt.date) -> bool:
    """Whether the log covers ``[as_of, as_of + H)`` (the data end is the day after the last event)."""
    return as_of + dt.timedelta(days=horizon_days) <= data_end


def realised_labels(events: Any, problem: ProblemConfig, as_of: dt.date, user_ids: pd.Series) -> pd.Series:
    """What happened after a scoring run: each user's ``problem`` label at cutoff ``as_of``
    (the UTC midnight), by the code that labels training rows (:func:`attach_labels` over the
    same daily table, activity and horizon); float64, indexed like ``user_ids``. Only
    meaningful once :func:`outcome_window_complete`."""
    ids = pd.Series(user_ids).astype(str)
    daily = daily_table(events, problem.activity.include, problem.activity.exclude)
    cutoffs = cutoff_table([as_of])
    frame = ibis.memtable(pd.DataFrame({"user_id": ids.unique()})).cross_join(cutoffs)
    if problem.kind not in ("churn", "purchase", "revenue"):
        raise ChurnkitError(f"{problem.name}: a {problem.kind} problem has no per-user label to realise")
    labelled = attach_labels(frame, daily, cutoffs, problem.kind, problem.horizon_days).select("user_id", LABEL).to_pandas()
    by_user = labelled.set_index(labelled["user_id"].astype(str))[LABEL]
    return pd.Series(ids.map(by_user).to_numpy("float64", na_value=np.nan), index=ids.index, name=LABEL)
