"""Evaluation metrics against hand-checked values and degenerate inputs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from churnkit.metrics import (
    bootstrap_interval,
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
    paired_bootstrap,
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


def test_ece_measures_a_known_miscalibration():
    """Calibrated scores have ECE near 0; scores 0.1 too high everywhere have ECE near 0.1,
    and the mean prediction reports the shift against the realised rate."""
    rng = np.random.default_rng(7)
    p = rng.uniform(0.1, 0.8, 50_000)
    y = (rng.random(p.size) < p).astype(float)
    assert expected_calibration_error(y, p) < 0.01
    assert expected_calibration_error(y, p + 0.1) == pytest.approx(0.1, abs=0.01)
    m = classifier_metrics(y, p + 0.1)
    assert m["mean_pred"] - m["base_rate"] == pytest.approx(0.1, abs=0.01)


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
    assert m["mean_pred"] == pytest.approx(p.mean())
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


# --------------------------------------------------------------------------- paired bootstrap


def binormal(seed: int, n: int, shifts=(1.2, 0.8), rho: float = 0.5):
    """Two scores of one 0/1 label, each N(shift * y, 1), correlated noise: the population
    AUC of each is Phi(shift / sqrt(2)), so their difference is known exactly."""
    r = np.random.default_rng(seed)
    y = (r.random(n) < 0.4).astype(float)
    e1 = r.normal(size=n)
    e2 = rho * e1 + np.sqrt(1 - rho**2) * r.normal(size=n)
    return y, shifts[0] * y + e1, shifts[1] * y + e2


def test_paired_bootstrap_interval_covers_a_known_auc_difference():
    from scipy.stats import norm

    truth = norm.cdf(1.2 / np.sqrt(2)) - norm.cdf(0.8 / np.sqrt(2))
    below = above = 0
    reps = 150
    for seed in range(reps):
        out = paired_bootstrap(*binormal(seed, 400), n_boot=300, seed=seed)
        assert out["low"] <= out["estimate"] <= out["high"] and out["n_boot"] == 300
        below += truth < out["low"]
        above += truth > out["high"]
    coverage = 1 - (below + above) / reps
    assert 0.89 <= coverage <= 0.99, coverage
    assert below <= 0.06 * reps and above <= 0.06 * reps  # misses on both sides, not a bias


def test_paired_bootstrap_interval_covers_a_known_gini_difference():
    def sample(seed: int, n: int):
        r = np.random.default_rng(seed)
        lam = r.gamma(2.0, 0.5, n)
        revenue = (r.random(n) < 1 - np.exp(-lam)) * r.gamma(2.0, lam * 10)
        e1 = r.normal(size=n)
        e2 = 0.5 * e1 + np.sqrt(0.75) * r.normal(size=n)
        return revenue, np.log(lam) + 0.5 * e1, np.log(lam) + e2

    big = sample(10**6, 400_000)
    truth = normalized_gini(big[0], big[1]) - normalized_gini(big[0], big[2])
    reps = 150
    hits = sum(
        (o := paired_bootstrap(*sample(s, 400), "gini_norm", n_boot=300, seed=s))["low"] <= truth <= o["high"]
        for s in range(reps)
    )
    assert 0.89 <= hits / reps <= 0.99, hits / reps


def test_paired_bootstrap_estimate_matches_the_metrics_and_weights_mean_repeats():
    y, a, b = binormal(3, 500)
    out = paired_bootstrap(y, a, b, seed=1)
    assert out["estimate"] == pytest.approx(classifier_metrics(y, a)["roc_auc"] - classifier_metrics(y, b)["roc_auc"])
    revenue = np.where(y > 0, np.exp(a), 0.0)
    g = paired_bootstrap(revenue, a, b, "gini_norm", seed=1)
    assert g["estimate"] == pytest.approx(normalized_gini(revenue, a) - normalized_gini(revenue, b))
    same = paired_bootstrap(y, a, a, seed=1)
    assert same["estimate"] == same["low"] == same["high"] == 0.0


def test_bootstrap_interval_is_one_score_on_the_paired_draws():
    """One score's interval: its metric on the rows, users drawn whole, seeded."""
    y, a, _ = binormal(4, 400)
    users = np.arange(400) // 2
    one = bootstrap_interval(y, a, groups=users, n_boot=300, seed=7)
    assert one["estimate"] == pytest.approx(classifier_metrics(y, a)["roc_auc"])
    assert one["low"] < one["estimate"] < one["high"] and one["n_groups"] == 200 and one["n_boot"] == 300
    assert bootstrap_interval(y, a, groups=users, n_boot=300, seed=7) == one  # seeded
    assert bootstrap_interval(y, a, n_boot=300, seed=7) != one  # users drawn, not rows
    revenue = np.where(y > 0, np.exp(a), 0.0)
    g = bootstrap_interval(revenue, a, "gini_norm", n_boot=200, seed=1)
    assert g["estimate"] == pytest.approx(normalized_gini(revenue, a)) and g["low"] < g["high"]


def test_paired_bootstrap_resamples_users_not_rows():
    """Each user at two cutoffs with the same rows: drawing users gives exactly the
    interval of one row per user; drawing rows would pretend to twice the data."""
    y, a, b = binormal(5, 300)
    users = np.arange(300)
    once = paired_bootstrap(y, a, b, groups=users, n_boot=200, seed=2)
    twice = paired_bootstrap(np.r_[y, y], np.r_[a, a], np.r_[b, b], groups=np.r_[users, users], n_boot=200, seed=2)
    assert twice == pytest.approx(once)
    rows = paired_bootstrap(np.r_[y, y], np.r_[a, a], np.r_[b, b], n_boot=200, seed=2)
    assert rows["high"] - rows["low"] < 0.85 * (once["high"] - once["low"])


def test_paired_bootstrap_degenerate_inputs():
    out = paired_bootstrap(np.zeros(20), np.arange(20.0), np.ones(20))  # one class: AUC undefined
    assert math.isnan(out["estimate"]) and math.isnan(out["low"]) and out["n_boot"] == 0
    empty = paired_bootstrap([], [], [])
    assert math.isnan(empty["estimate"]) and empty["n_groups"] == 0
    missing = paired_bootstrap([0, 1, 0, 1, np.nan], [0.1, 0.9, 0.2, 0.8, 0.5], [0.2, 0.1, 0.3, 0.9, np.nan], n_boot=50)
    assert missing["n_groups"] == 4
    with pytest.raises(ValueError, match="metric must be one of"):
        paired_bootstrap([0, 1], [0, 1], [1, 0], "brier")
    with pytest.raises(ValueError, match="lengths differ"):
        paired_bootstrap([0, 1], [0, 1], [1])


def test_mean_abs_shap_ranks_features_by_mean_absolute_contribution_without_the_bias():
    import pandas as pd

    from churnkit.metrics import mean_abs_shap

    c = pd.DataFrame({"a": [1.0, -1.0], "b": [-3.0, 1.0], "c": [0.0, 0.0], "bias": [9.0, 9.0]})
    ranked = mean_abs_shap(c)
    assert ranked.index.tolist() == ["b", "a", "c"] and ranked["b"] == 2.0
