"""Each assigned user's outcomes in the window after assignment, and the same before it.

An exposure is an assignment: ``(user_id, campaign_id, variant, assigned_ts)``. A user's
outcome window is ``[assigned_ts, assigned_ts + window)`` (the row's ``horizon_days`` where
the table has it, else the configured default); ``retained`` is any activity in it by the
features' own ``is_activity`` rule, so it is the complement of the churn label. The
pre-period ``[assigned_ts - window, assigned_ts)`` gives each metric's covariate for CUPED
(``pre_<metric>``): it cannot have been moved by the campaign.

Ibis expressions over the events table, so the same code runs on DuckDB and Spark.
"""

from __future__ import annotations

from dataclasses import dataclass

import ibis
import ibis.expr.types as ir

from churnkit.contracts import PURCHASE, REFUND
from churnkit.features.context import days_between, is_activity

OPT_OUT = "push_opt_out"
"""The event a source maps push opt-outs to (a guardrail where the log has it)."""
SUPPORT_TICKET = "support_ticket"


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    guardrail: bool = False
    """A guardrail: higher is worse; judged against a non-inferiority margin."""


METRICS: tuple[Metric, ...] = (
    Metric("retained", "share of users with any activity in the window (1 - churn)"),
    Metric("converted", "share of users with a purchase in the window"),
    Metric("revenue", "purchases minus refunds in the window, per user"),
    Metric("orders", "orders in the window, per user (the lines of one order count once)"),
    Metric("push_opt_outs", "push opt-outs in the window, per user", guardrail=True),
    Metric("support_tickets", "support tickets in the window, per user", guardrail=True),
    Metric("refunds", "refunds in the window, per user", guardrail=True),
)
"""Every metric a campaign is evaluated on, primary first."""
NAMES = tuple(m.name for m in METRICS)


def _measures(e: ir.Table, where: ir.BooleanValue, include: list[str] | None,
              exclude: list[str]) -> dict[str, ir.Value]:
    """The metrics' aggregates over the events matching ``where``."""
    act = is_activity(e.event, include, exclude)
    buy = e.event == PURCHASE
    amount = e.amount.fill_null(0.0).cast("float64")
    return {
        "retained": e.event.count(where=where & act) > 0,
        "converted": e.event.count(where=where & buy) > 0,
        "revenue": (amount.sum(where=where & buy).fill_null(0.0) - amount.sum(where=where & (e.event == REFUND))
                    .fill_null(0.0)),
        "orders": e.event.count(where=where & buy & e.order_id.isnull()) + e.order_id.nunique(where=where & buy),
        "push_opt_outs": e.event.count(where=where & (e.event == OPT_OUT)),
        "support_tickets": e.event.count(where=where & (e.event == SUPPORT_TICKET)),
        "refunds": e.event.count(where=where & (e.event == REFUND)),
    }


def outcomes(events: ir.Table, assignments: ir.Table, window_days: int, include: list[str] | None,
             exclude: list[str]) -> ir.Table:
    """One row per assignment: its columns, ``window_end``, every metric of :data:`METRICS`
    in the window and ``pre_<metric>`` in the same length before it (float64; users with no
    event in either window are kept, with zeros), and ``days_to_active``: days from the
    assignment to the first activity in the window (null without one; for the cumulative
    effect over the window)."""
    a = assignments
    if "horizon_days" in a.columns:
        days = a.horizon_days.cast("int64").fill_null(window_days)
    else:
        days = ibis.literal(window_days, "int64")
    a = a.mutate(_days=days)
    a = a.mutate(window_end=a.assigned_ts + a._days.as_interval("D"), _pre_start=a.assigned_ts - a._days.as_interval("D"))
    e = events.select("user_id", "ts", "event", "amount", "order_id")
    j = a.select("campaign_id", "user_id", "assigned_ts", "window_end", "_pre_start").inner_join(
        e, [a.user_id == e.user_id, e.ts >= a._pre_start, e.ts < a.window_end])
    post = j.ts >= j.assigned_ts
    pre = j.ts < j.assigned_ts
    aggs = _measures(j, post, include, exclude)
    aggs |= {f"pre_{k}": v for k, v in _measures(j, pre, include, exclude).items()}
    aggs["_first_active"] = j.ts.min(where=post & is_activity(j.event, include, exclude))
    per = j.group_by(["campaign_id", "user_id"]).aggregate(**aggs)
    out = a.left_join(per, ["campaign_id", "user_id"])
    out = out.drop(*[c for c in out.columns if c.endswith("_right")], "_pre_start", "_days")
    out = out.mutate(days_to_active=days_between(out._first_active, out.assigned_ts)).drop("_first_active")
    return out.mutate(**{c: out[c].cast("float64").fill_null(0.0) for c in (*NAMES, *(f"pre_{n}" for n in NAMES))})
