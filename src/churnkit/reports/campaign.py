"""The campaign report, from plain tables: design and SRM, metrics with intervals,
guardrails, a forest plot and the effect as the window runs."""

from __future__ import annotations

from typing import Any

import pandas as pd

from churnkit.reports.html import png, render
from churnkit.reports.plots import budget_curve, cumulative_effect, forest, qini


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


def uplift_models(evaluations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """An uplift section per uplift model that held this campaign out: its test numbers,
    Qini curve and budget curve (true incremental value where the data are simulated)."""
    out = []
    for e in evaluations:
        m, budget = e["metrics"], e["budget"]
        value = "true_incremental" if budget["true_incremental"].notna().any() else "estimated_incremental"
        row = {"variant": "treatment", "learner": e["learner"].upper(), "n_test": int(m["test_rows"]),
               "test_effect": m["average_effect"], **{k: m.get(k, float("nan")) for k in (
                   "qini", "qini_low", "qini_high", "auuc", "auuc_low", "auuc_high", "uplift_at_10", "uplift_at_20")}}
        curve = e["curve"].assign(variant="treatment", learner=e["learner"].upper())
        table = budget.pivot(index="budget_share", columns="ranking", values=value).reset_index()
        out.append({"problem": e["problem"], "metric": e.get("outcome", e["problem"]), "rows": [row],
                    "figure": png(qini(curve, f"Qini curve of {e['problem']} on this campaign")),
                    "budget_figure": png(budget_curve(budget, value)), "budget_value": value.replace("_", " "),
                    "budget": table.to_dict("records"), "rankings": [c for c in table.columns if c != "budget_share"],
                    "truth": {k: m[k] for k in ("true_effect_correlation", "share_of_oracle_qini") if k in m}})
    return out
