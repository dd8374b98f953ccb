"""Evaluation metrics against hand-checked values and degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from churnkit.metrics import (
    calibration_table,
    classifier_metrics,
    compare_table,
    decile_mape,
    expected_calibration_error,
    gain_curve,
    interval_metrics,
    lift_capture,
    ltv_metrics,
    normalized_gini,
    truth_share,
)


def test_normalized_gini_perfect_reversed_random_constant():
    rng = np.random.default_rng(0)
    y = rng.gamma(0.5, 20.0, 5000) * (rng.random(5000) < 0.3)
    assert normalized_gini(y, y) == pytest.approx(1.0)
    assert normalized_gini(y, 2 * y + 1) == pytest.approx(1.0)  # only the order matters
    assert normalized_gini(y, -y) < -0.9
    assert abs(normalized_gini(y, rng.random(5000))) < 0.05
    assert abs(normalized_gini(y, np.ones(5000))) < 1e-3  # ties averaged, not input order


def test_normalized_gini_hand_example():
    # y = [0, 0, 1, 3]; perfect order 3,1,0,0 -> cum share .75,1,1,1 -> raw 2*.9375-1 = .875
    # pred order 1,3,0,0 (pred 4,3,2,1)-> cum .25,1,1,1 -> raw 2*.8125-1 = .625
    y = np.array([0.0, 0.0, 1.0, 3.0])
    pred = np.array([1.0, 2.0, 4.0, 3.0])
    assert normalized_gini(y, pred) == pytest.approx(0.625 / 0.875)


def test_normalized_gini_degenerate_is_nan():
    assert math.isnan(normalized_gini(np.zeros(10), np.arange(10)))
    assert math.isnan(normalized_gini([], []))


def test_ece_perfectly_calibrated_is_small_and_miscalibrated_is_not():
    rng = np.random.default_rng(1)
    p = rng.beta(1, 5, 200_000)
    y = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.005
    assert expected_calibration_error(y, np.clip(p * 2, 0, 1)) > 0.1


def test_calibration_bins_are_equal_mass():
    p = np.linspace(0, 1, 1000)
    t = calibration_table(np.zeros(1000), p, n_bins=10)
    assert len(t) == 10 and (t["n"] == 100).all()


def test_lift_and_capture_tiny_example():
    # 10 users, 2 positives; both in the top 20% -> capture 1, lift 5; top 10% -> 0.5, 5.
    y = np.array([1, 1, 0, 0, 0, 0, 0, 0, 0, 0], dtype=float)
    s = np.linspace(1.0, 0.1, 10)
    assert lift_capture(y, s, 0.2) == pytest.approx((5.0, 1.0))
    assert lift_capture(y, s, 0.1) == pytest.approx((5.0, 0.5))
    # positives at ranks 1 and 6: top 20% captures one of two
    y2 = np.array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0], dtype=float)
    assert lift_capture(y2, s, 0.2) == pytest.approx((2.5, 0.5))
    x, g = gain_curve(y2, s)
    assert g[0] == 0 and g[-1] == pytest.approx(1.0) and x[-1] == 1.0


def test_classifier_metrics_keys_and_values():
    y = np.array([0, 0, 1, 1], dtype=float)
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = classifier_metrics(y, p)
    assert m["roc_auc"] == pytest.approx(0.75)
    assert m["base_rate"] == 0.5
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    assert m["log_loss"] == pytest.approx(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))
    for k in ("pr_auc", "ece", "lift_top5", "capture_top10", "lift_top20"):
        assert k in m


def test_classifier_metrics_one_class_gives_nan_not_error():
    m = classifier_metrics(np.zeros(50), np.linspace(0, 1, 50))
    assert math.isnan(m["roc_auc"]) and math.isnan(m["pr_auc"]) and math.isnan(m["lift_top10"])
    assert m["base_rate"] == 0.0 and np.isfinite(m["brier"])
    m1 = classifier_metrics(np.ones(5), np.full(5, 0.5))
    assert math.isnan(m1["roc_auc"])


def test_ltv_metrics_and_coverage():
    y = np.array([0.0, 0.0, 10.0, 20.0, 0.0, 5.0])
    pred = np.array([1.0, 0.5, 8.0, 25.0, 0.0, 4.0])
    m = ltv_metrics(y, pred, low=np.zeros(6), high=np.array([0, 0, 9, 30, 1, 6.0]))
    assert m["rmse"] == pytest.approx(np.sqrt(np.mean((pred - y) ** 2)))
    assert m["mae"] == pytest.approx(np.mean(np.abs(pred - y)))
    assert m["coverage"] == pytest.approx(5 / 6)  # 10 > 9 is outside; bounds are closed
    assert m["mean_width"] == pytest.approx(46 / 6)
    assert m["spearman"] > 0.9 and m["gini_norm"] == pytest.approx(1.0)
    assert interval_metrics([1, 2], [0, 3], [1, 4]) == {"coverage": 0.5, "mean_width": 1.0}


def test_decile_mape_exact_predictions_is_zero_and_all_zero_is_nan():
    y = np.arange(100, dtype=float)
    assert decile_mape(y, y) == pytest.approx(0.0)
    assert decile_mape(y, 1.1 * y) == pytest.approx(0.1)
    m = ltv_metrics(np.zeros(20), np.linspace(0, 1, 20))
    assert math.isnan(m["gini_norm"]) and math.isnan(m["decile_mape"]) and math.isnan(m["spearman"])


def test_truth_share_and_compare_table():
    assert truth_share(0.7, 0.9) == pytest.approx(0.5)
    assert truth_share(0.3, 0.6, floor=0.0) == pytest.approx(0.5)
    assert math.isnan(truth_share(0.7, 0.5)) and math.isnan(truth_share(float("nan"), 0.9))
    t = compare_table({"model": {"auc": 0.8, "ece": 0.01}, "rfm": {"auc": 0.7}, "truth": {"auc": 0.9}})
    assert list(t.columns) == ["model", "rfm", "truth"]
    assert list(t.index) == ["auc", "ece"]
    assert math.isnan(t.loc["ece", "rfm"]) and t.loc["auc", "truth"] == 0.9
