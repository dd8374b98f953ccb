"""What a scoring run produced, in numbers a person reads and MLflow logs (only for the
roles that were scored)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from churnkit.contracts import ROLE_OUTPUTS, ROLES, VALUE_AT_RISK, in_population_column

SUMMARISED = (*(ROLE_OUTPUTS[r]["score"] for r in ROLES), VALUE_AT_RISK)


def score_summary(scores: pd.DataFrame) -> dict[str, Any]:
    """Counts and distributions of a scoring run (printed and logged to MLflow)."""
    out: dict[str, Any] = {"users": len(scores)}
    for col in (c for c in SUMMARISED if c in scores):
        v = scores[col].dropna()
        if len(v):
            q = v.quantile([0.1, 0.5, 0.9])
            out[col] = {"mean": float(v.mean()), "p10": float(q.iloc[0]), "p50": float(q.iloc[1]),
                        "p90": float(q.iloc[2])}
    if VALUE_AT_RISK in scores:
        out[f"{VALUE_AT_RISK}_total"] = float(scores[VALUE_AT_RISK].sum())
    for col in (in_population_column(r) for r in ROLES):
        if col in scores:
            out[col] = int(scores[col].fillna(False).sum())
    for col in ("lifecycle_stage", "rfm_tier"):
        if col in scores and scores[col].notna().any():
            out[f"by_{col}"] = {str(k): int(v) for k, v in scores[col].value_counts().items()}
    return out


def summary_metrics(summary: dict[str, Any]) -> dict[str, Any]:
    """The summary's numbers for MLflow: counts by stage and tier and text values left out."""

    def numeric(v: Any) -> Any:
        if isinstance(v, dict):
            kept = {k: numeric(x) for k, x in v.items()}
            return {k: x for k, x in kept.items() if x is not None and x != {}}
        return v if isinstance(v, int | float) and not isinstance(v, bool) else None

    return numeric({k: v for k, v in summary.items() if not k.startswith("by_")})
