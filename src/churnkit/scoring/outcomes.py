"""What really happened after an as-of date, once the log reaches past it: realised churn.

When the events extend ``H`` days (the churn problem's horizon) beyond the as-of date, each
scored user's churn outcome is known, by the same label definition training used
(:func:`churnkit.datasets.labels.realised_labels`: no activity in ``[as_of, as_of + H)``). Set beside the
lifecycle stages it says what a stage means on this data (do "churned" users really stay
away? how many "active" ones leave?).
"""

from __future__ import annotations

from typing import Any

import pandas as pd


def churn_by_stage(stages: pd.Series, churned: pd.Series, horizon_days: int) -> dict[str, Any]:
    """Users, churners and the realised churn rate per lifecycle stage and overall."""
    df = pd.DataFrame({"stage": stages.fillna("n/a").astype(str).to_numpy(), "churned": churned.to_numpy("float64")})
    g = df.groupby("stage", sort=False)["churned"].agg(["size", "sum"])
    by_stage = {str(k): {"users": int(r["size"]), "churned": int(r["sum"]), "rate": float(r["sum"] / r["size"])}
                for k, r in g.iterrows()}
    return {"horizon_days": horizon_days, "users": len(df), "rate": float(df["churned"].mean()) if len(df) else 0.0,
            "by_stage": by_stage}
