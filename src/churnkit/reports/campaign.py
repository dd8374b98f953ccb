"""The campaign report, from plain tables: design and SRM, metrics with intervals,
guardrails, a forest plot and the effect as the window runs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from churnkit.reports.html import png, render
from churnkit.reports.plots import cumulative_effect, forest, qini


def design(rows: pd.DataFrame, control: str, srm_p: float, srm_failed: bool) -> dict[str, Any]:
    """Arms with their users and share, the control, and the sample-ratio check."""
    counts = rows["variant"].value_counts().sort_index()
    arms = [{"variant": str(v), "users": int(n), "share": n / counts.sum(), "control": v == control}
            for v, n in counts.items()]
    return {"arms": arms, "srm_p": srm_p, "srm_failed": srm_failed}


def campaign_html(context: dict[str, Any]) -> str:
    return render("campaign.html.j2", **context)


def figures(table: pd.DataFrame, curve: pd.DataFrame) -> dict[str, str | None]:
    """The forest plot of every row with a relative effect, and the cumulative effect."""
    ok = table.dropna(subset=["rel_effect", "rel_ci_low", "rel_ci_high"])
    return {"forest": png(forest(ok)) if len(ok) else None,
            "cumulative": png(cumulative_effect(curve)) if len(curve) else None}


def uplift(curve: pd.DataFrame, by_variant: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    """The uplift section: Qini curves on the held-out split and each arm's headline numbers."""
    return {"metric": metric, "rows": by_variant, "figure": png(qini(curve)) if len(curve) else None}
