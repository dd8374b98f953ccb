"""How far a report can be trusted: best baseline and its interval, drift and calendar notes."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from churnkit.contracts import LABEL
from churnkit.training.evaluation import (
    best_baseline,
    calendar_gap,
    calibration_report,
    compare_with_best,
    comparison_text,
    label_drift,
    label_rates,
)
from churnkit.training.fit import metrics_for

JAN = dt.date(2011, 1, 7)


def weekly(n: int, start: dt.date = JAN) -> list[dt.date]:
    return [start + dt.timedelta(days=7 * k) for k in range(n)]


def labelled(cutoffs: list[dt.date], rates: np.ndarray, rows: int, seed: int = 0) -> pd.DataFrame:
    """Rows per cutoff with labels drawn at the given rates, as a training set holds them."""
    rng = np.random.default_rng(seed)
    parts = [pd.DataFrame({"user_id": [f"u{i}" for i in range(rows)], "cutoff": pd.Timestamp(c, tz="UTC"),
                           LABEL: (rng.random(rows) < r).astype("float64")}) for c, r in zip(cutoffs, rates, strict=True)]
    return pd.concat(parts, ignore_index=True)


def test_label_rate_drift_is_told_from_noise():
    cuts = weekly(24)
    rising = labelled(cuts, np.linspace(0.39, 0.52, 24), rows=3000)
    d = label_drift(label_rates(rising, cuts))
    assert d["drifted"] and d["early"]["rate"] == pytest.approx(0.41, abs=0.01)
    assert d["late"]["rate"] == pytest.approx(0.50, abs=0.01) and d["late"]["to"] == str(cuts[-1])
    flat = labelled(cuts, np.full(24, 0.45), rows=3000)
    assert not label_drift(label_rates(flat, cuts))["drifted"]
    few = labelled(cuts, np.linspace(0.39, 0.52, 24), rows=20)  # the same rise within noise
    assert not label_drift(label_rates(few, cuts))["drifted"]
    assert label_drift(label_rates(flat, cuts[:1])) == {"drifted": False}


def test_calendar_gap_flags_a_season_the_training_never_saw():
    monthly = [dt.date(2011, m, 10) for m in range(1, 7)]
    retail = calendar_gap(monthly, [dt.date(2011, 9, 9)])
    assert retail["outside"] and retail["days"] == 91
    a_year_before = calendar_gap([*weekly(52, dt.date(2010, 1, 1)), *monthly], [dt.date(2011, 9, 9)])
    assert not a_year_before["outside"] and a_year_before["days"] <= 7
    assert not calendar_gap(weekly(10), [weekly(10)[-1] + dt.timedelta(days=7)])["outside"]
    assert calendar_gap([dt.date(2010, 12, 20)], [dt.date(2011, 1, 5)])["days"] == 16  # across new year
    assert calendar_gap([], [JAN]) == {"outside": False}


def test_calibration_report_says_what_the_data_cannot_support_with_figures():
    cuts = weekly(24)
    df = labelled(cuts, np.linspace(0.39, 0.52, 24), rows=2000)
    test = [dt.date(2011, 9, 9)]
    at_test = {"mean_pred": 0.523, "base_rate": 0.429, "ece": 0.094, "brier": 0.2}
    choice = {"chosen": "none", "fitted_on": [str(cuts[-1])], "rows": 2000, "candidates": {}}
    report, notes = calibration_report(df, cuts, test, at_test, choice)
    assert report["drift"]["drifted"] and report["calendar"]["outside"]
    assert report["choice"] == choice and len(report["label_rate_by_training_cutoff"]) == 24
    drift, season = notes
    assert "label rate drifts" in drift and "0.523" in drift and "0.429" in drift and "ECE 0.094" in drift
    assert "2011-09-09" in season and "never learnt" in season
    steady, quiet = calibration_report(labelled(cuts, np.full(24, 0.4), rows=2000), cuts,
                                       [cuts[-1] + dt.timedelta(days=7)], at_test, choice)
    assert quiet == [] and not steady["drift"]["drifted"]


def test_model_is_compared_with_its_strongest_baseline():
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.4).astype(float)
    scores = {"model": y + rng.normal(size=2000), "rfm": 0.5 * y + rng.normal(size=2000),
              "lgbm_rfm": y + rng.normal(size=2000) * 1.1, "truth": y * 5.0}
    metrics = metrics_for("churn", y, scores)
    assert best_baseline("churn", metrics, ["rfm", "lgbm_rfm", "bgnbd"]) == "lgbm_rfm"  # truth is no baseline
    c = compare_with_best("churn", y, scores, metrics, ["rfm", "lgbm_rfm"], np.arange(2000), n_boot=200)
    assert c["baseline"] == "lgbm_rfm" and c["metric"] == "roc_auc"
    assert c["estimate"] == pytest.approx(metrics["model"]["roc_auc"] - metrics["lgbm_rfm"]["roc_auc"])
    assert c["low"] < c["estimate"] < c["high"]
    assert "model - lgbm_rfm (best baseline)" in comparison_text(c) and "95% interval" in comparison_text(c)
    assert compare_with_best("churn", y, scores, metrics, [], np.arange(2000)) == {}
    assert comparison_text({}) == "no baseline to compare the model with"
