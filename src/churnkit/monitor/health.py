"""Is a model still fit to act on? Advice and alerts from one scoring run's monitoring row.

Four signals, strongest first:

- **realised drop** (critical): once outcomes are known, the headline metric fell below its
  test value by more than ``monitor.margin``; the model ranks worse than it did at release.
- **expected drop** (warning): before outcomes, the calibrated scores themselves predict
  that drop (see :mod:`churnkit.monitor.expected` for the caveat).
- **drivers drifted** (warning): a feature among the model's top drivers moved away from
  the training population; when it moved because values went missing or out of range, the
  upstream field is the first suspect, not the model.
- **score drift** (warning): the distribution of scores moved from the test rows'.

A retrain is advised for the first three; score drift alone is reported but is often the
population (the season, a campaign) rather than the model. Alerts go to the KPI alert
ledger (:mod:`churnkit.monitor.ledger`) as breaches of rules named ``model:<problem>:...``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import MonitorSettings
from churnkit.monitor.anomalies import Breach
from churnkit.monitor.history import REALISED


@dataclass(frozen=True)
class Advice:
    retrain: bool
    why: str
    breaches: list[Breach] = field(default_factory=list)


def rule_name(problem: str, signal: str) -> str:
    """The alert rule of one signal for one problem (``model:churn_ga4:roc_auc``)."""
    return f"model:{problem}:{signal}"


def _number(v: Any) -> float:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return float("nan")
    return f


def advise(row: Mapping[str, Any], drift: pd.DataFrame, settings: MonitorSettings) -> Advice:
    """Advice and alerts for one history row (``monitor.history.COLUMNS``) and its drift table."""
    problem, headline = str(row["problem"]), str(row["headline"])
    period = dt.date.fromisoformat(str(row["as_of"]))
    test = _number(row["test_value"])
    reasons: list[str] = []
    breaches: list[Breach] = []
    retrain = False
    realised = row["status"] == REALISED
    value = _number(row["value_now"])
    if np.isfinite(test) and np.isfinite(value) and test - value > settings.margin:
        word = "realised" if realised else "expected"
        reasons.append(f"{word} {headline} {value:.3f} is {test - value:.3f} below the test {test:.3f}"
                       f" (margin {settings.margin:g})")
        breaches.append(Breach(rule_name(problem, f"{word}_{headline}"), f"{word} {headline}", "all", period, value,
                               test, test - settings.margin, float("inf"), "critical" if realised else "warning"))
        retrain = True
    if len(drift):
        hit = drift[drift["drifted"].astype(bool) & drift["driver_rank"].notna()].sort_values("driver_rank")
        if len(hit):
            broken = hit.loc[hit["broken"].astype(bool), "feature"].tolist() if "broken" in hit else []
            names = ", ".join(hit["feature"].head(5))
            reasons.append(f"top drivers drifted: {names}" + (
                f" (check the upstream data first: {', '.join(broken[:3])} went missing or out of range)"
                if broken else ""))
            breaches.append(Breach(rule_name(problem, "drivers_drifted"), "drivers drifted", "all", period,
                                   float(len(hit)), 0.0, 0.0, 0.0, "warning", names))
            retrain = True
    if bool(row.get("score_drifted")):
        reasons.append(f"the score distribution moved (PSI {_number(row['score_psi']):.2f})")
        breaches.append(Breach(rule_name(problem, "score_drift"), "score PSI", "all", period,
                               _number(row["score_psi"]), 0.0, 0.0, settings.psi, "warning"))
    if bool(row.get("in_training")) and realised:
        reasons.append("these outcomes overlap the training window: in-sample, not evidence the model holds up")
    if not reasons or all(r.startswith("these outcomes overlap") for r in reasons):
        reasons.insert(0, "no drop beyond the margin, no driver drifted" if realised or np.isfinite(value)
                       else "no driver drifted; outcomes not known yet")
    return Advice(retrain, "; ".join(reasons), breaches)
