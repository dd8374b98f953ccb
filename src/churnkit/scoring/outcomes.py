"""What really happened after an as-of date, once the log reaches past it: realised churn.

When the events extend ``H`` days (the churn problem's horizon) beyond the as-of date, each
scored user's churn outcome is known, by the same label definition training used
(:mod:`churnkit.datasets.labels`: no activity in ``[as_of, as_of + H)``). Set beside the
lifecycle stages it says what a stage means on this data (do "churned" users really stay
away? how many "active" ones leave?).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churnkit.config import ProblemConfig
from churnkit.datasets.labels import label_expr, outcome_table
from churnkit.features.context import cutoff_table, daily_table


def outcome_window_complete(as_of: dt.date, horizon_days: int, data_end: dt.date) -> bool:
    """Whether the log covers ``[as_of, as_of + H)`` (the data end is the day after the last event)."""
    return as_of + dt.timedelta(days=horizon_days) <= data_end


def realised_churn(events: ir.Table, problem: ProblemConfig, as_of: dt.date, user_ids: pd.Series) -> pd.Series:
    """1.0 where the user had no activity in ``[as_of, as_of + H)`` (H and activity from the
    churn ``problem``), else 0.0; indexed like ``user_ids``."""
    daily = daily_table(events, problem.activity.include, problem.activity.exclude)
    o = outcome_table(daily, cutoff_table([as_of]), problem.horizon_days)
    returned = o.filter(label_expr(o, "churn") == 0.0).select("user_id").to_pandas()["user_id"]
    return pd.Series(np.where(user_ids.isin(set(returned)), 0.0, 1.0), index=user_ids.index, name="realised_churn")


def churn_by_stage(stages: pd.Series, churned: pd.Series, horizon_days: int) -> dict[str, Any]:
    """Users, churners and the realised churn rate per lifecycle stage and overall."""
    df = pd.DataFrame({"stage": stages.fillna("n/a").astype(str).to_numpy(), "churned": churned.to_numpy("float64")})
    g = df.groupby("stage", sort=False)["churned"].agg(["size", "sum"])
    by_stage = {str(k): {"users": int(r["size"]), "churned": int(r["sum"]), "rate": float(r["sum"] / r["size"])}
                for k, r in g.iterrows()}
    return {"horizon_days": horizon_days, "users": len(df), "rate": float(df["churned"].mean()) if len(df) else 0.0,
            "by_stage": by_stage}
