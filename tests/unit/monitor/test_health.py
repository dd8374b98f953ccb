"""Retrain advice and model alerts from one monitoring row: each signal for its own reason,
the severity by whether outcomes are in, the upstream hint for broken fields; realised vs
predicted by segment adds up."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.config import MonitorSettings
from churnkit.metrics import classifier_metrics
from churnkit.monitor.health import advise
from churnkit.monitor.history import AWAITING, REALISED
from churnkit.monitor.realised import by_segment

SETTINGS = MonitorSettings(margin=0.05)


def row(**changes) -> dict:
    base = {"problem": "churn_x", "headline": "roc_auc", "as_of": "2024-06-03", "test_value": 0.80,
            "status": REALISED, "realised_value": 0.79, "expected_value": 0.80, "score_drifted": False,
            "score_psi": 0.01, "in_training": False}
    out = base | changes
    return out | {"value_now": out["realised_value"] if out["status"] == REALISED else out["expected_value"]}


def drift(*rows: tuple) -> pd.DataFrame:
    """(feature, drifted, why, driver_rank[, broken])"""
    return pd.DataFrame([(*r, False)[:5] for r in rows], columns=["feature", "drifted", "why", "driver_rank", "broken"])


QUIET = drift(("a", False, "", 1.0), ("b", True, "distribution moved (PSI 0.40)", np.nan))


def test_a_healthy_model_is_left_alone():
    advice = advise(row(), QUIET, SETTINGS)
    assert not advice.retrain and advice.breaches == [] and "no drop" in advice.why


def test_a_realised_drop_beyond_the_margin_is_critical_and_advises_a_retrain():
    advice = advise(row(realised_value=0.70), QUIET, SETTINGS)
    assert advice.retrain and "realised roc_auc 0.700 is 0.100 below the test 0.800" in advice.why
    (b,) = advice.breaches
    assert b.severity == "critical" and b.rule == "model:churn_x:realised_roc_auc" and b.observed == 0.70
    assert not advise(row(realised_value=0.76), QUIET, SETTINGS).retrain  # within the margin


def test_an_expected_drop_before_outcomes_is_only_a_warning():
    advice = advise(row(status=AWAITING, realised_value=np.nan, expected_value=0.70), QUIET, SETTINGS)
    (b,) = advice.breaches
    assert advice.retrain and b.severity == "warning" and "expected roc_auc" in advice.why


def test_a_drifted_driver_advises_a_retrain_and_a_broken_field_points_upstream():
    moved = drift(("a", True, "distribution moved (PSI 0.40)", 1.0))
    advice = advise(row(), moved, SETTINGS)
    assert advice.retrain and "top drivers drifted: a" in advice.why and "upstream" not in advice.why
    broken = drift(("spend", True, "60% outside the reference range [0, 900]", 2.0, True))
    assert "check the upstream data first: spend" in advise(row(), broken, SETTINGS).why
    assert not advise(row(), QUIET, SETTINGS).retrain  # a drifted feature the model hardly uses


def test_score_drift_alone_is_reported_but_advises_no_retrain():
    advice = advise(row(score_drifted=True, score_psi=0.31), QUIET, SETTINGS)
    assert not advice.retrain and [b.rule for b in advice.breaches] == ["model:churn_x:score_drift"]


def test_realised_figures_inside_the_training_window_are_called_in_sample():
    assert "in-sample" in advise(row(in_training=True), QUIET, SETTINGS).why


def test_by_segment_adds_up_to_the_whole_and_reads_each_segment_with_the_training_metric():
    rng = np.random.default_rng(3)
    p = pd.Series(rng.random(600))
    y = pd.Series((rng.random(600) < p).astype(float))
    stage = pd.Series(rng.choice(["active", "silent", None], 600))
    t = by_segment("churn", "roc_auc", y, p, {"lifecycle_stage": stage})
    whole = t[t["segment_by"] == "all"].iloc[0]
    parts = t[t["segment_by"] == "lifecycle_stage"]
    assert set(parts["segment"]) == {"active", "silent", "n/a"}
    assert parts["users"].sum() == whole["users"] == 600
    assert parts["realised_total"].sum() == y.sum() and parts["predicted_total"].sum() == pytest.approx(p.sum())
    assert whole["value"] == pytest.approx(classifier_metrics(y, p)["roc_auc"])
    active = (stage == "active").to_numpy()
    got = parts.set_index("segment").loc["active", "value"]
    assert got == pytest.approx(classifier_metrics(y[active], p[active])["roc_auc"])
