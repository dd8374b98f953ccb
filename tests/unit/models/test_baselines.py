"""Baselines: RFM heuristic monotonicity, last-period arithmetic, BG/NBD on real CDNOW data."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from churnkit.errors import ChurnkitError
from churnkit.models.baselines import (
    BGNBD_OUTPUTS,
    BGNBDBaseline,
    LastPeriodRevenue,
    RecencyRFMBaseline,
    bgnbd_features,
    comparable_window,
)


def rfm_frame(n: int = 3000, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "days_since_last_activity": rng.exponential(10.0, n),
            "purchases_total": rng.poisson(2.0, n).astype(float),
            "revenue_total": rng.gamma(1.0, 50.0, n),
            "other": rng.normal(size=n),
        }
    )
    X.loc[:50, "revenue_total"] = np.nan
    p_churn = 1 / (1 + np.exp(-(0.15 * X["days_since_last_activity"] - 0.3 * X["purchases_total"] - 1)))
    return X, (rng.random(n) < p_churn).astype(float)


@pytest.mark.parametrize("kind", ["churn", "purchase"])
def test_rfm_baseline_is_monotone_in_recency(kind):
    X, churned = rfm_frame()
    y = churned if kind == "churn" else 1.0 - churned
    model = RecencyRFMBaseline(kind=kind).fit(X, y)
    grid = pd.DataFrame(
        {
            "days_since_last_activity": np.linspace(0, 80, 200),
            "purchases_total": 2.0,
            "revenue_total": 100.0,
            "other": 0.0,
        }
    )
    p = model.predict_proba(grid)[:, 1]
    assert ((p >= 0) & (p <= 1)).all()
    steps = np.diff(p)
    if kind == "churn":
        assert (steps >= 0).all() and p[-1] > p[0]
    else:
        assert (steps <= 0).all() and p[-1] < p[0]


def test_rfm_baseline_is_informative_and_calibrated_on_training_rows():
    from churnkit.metrics import classifier_metrics

    X, y = rfm_frame()
    m = classifier_metrics(y, RecencyRFMBaseline().fit(X, y).predict_proba(X)[:, 1])
    assert m["roc_auc"] > 0.7
    assert m["ece"] < 0.03


def test_rfm_percentiles_come_from_training_rows_not_the_batch():
    X, y = rfm_frame()
    model = RecencyRFMBaseline().fit(X, y)
    one = X.iloc[[7]]
    assert model.predict_proba(one)[0, 1] == pytest.approx(model.predict_proba(X)[7, 1])


def test_rfm_missing_column_is_a_one_line_error():
    X, y = rfm_frame(100)
    with pytest.raises(ChurnkitError, match="needs column"):
        RecencyRFMBaseline().fit(X.drop(columns="purchases_total"), y)


def test_recency_baseline_is_the_rfm_heuristic_on_recency_alone():
    X, y = rfm_frame()
    recency = RecencyRFMBaseline(frequency=None, monetary=None).fit(X, y)
    p = recency.predict_proba(X.drop(columns=["purchases_total", "revenue_total"]))[:, 1]
    order = np.argsort(X["days_since_last_activity"].to_numpy())
    assert (np.diff(p[order]) >= -1e-12).all()  # churn risk never falls as silence grows
    assert recency.predict_proba(X)[:, 1] == pytest.approx(p)
    both = RecencyRFMBaseline().fit(X, y).predict_proba(X)[:, 1]
    assert not np.allclose(both, p)  # frequency and monetary do change the full heuristic


def fitted_params(**params) -> BGNBDBaseline:
    """A BG/NBD baseline holding given fitted parameters (what ``fit`` stores), to judge them."""
    model = BGNBDBaseline()
    model.params_ = {"r": 0.24, "alpha": 4.4, "a": 0.79, "b": 2.4, "p": 6.25, "q": 3.74, "v": 15.4} | params
    return model


def test_bgnbd_degenerate_fits_are_named():
    assert fitted_params().degenerate() == {}  # the published CDNOW fit
    assert "no dropout identified" in fitted_params(a=2.5e-5, b=1755.0).degenerate()["bgnbd"]
    assert "no dropout identified" in fitted_params(a=0.0).degenerate()["bgnbd"]
    ran_off = fitted_params(r=3e6).degenerate()["bgnbd"]
    assert "r at the edge" in ran_off and "not converged" in ran_off
    assert "undefined" in fitted_params(alpha=float("nan")).degenerate()["bgnbd"]
    spend = fitted_params(p=8.2e6, q=2.4e11).degenerate()
    assert set(spend) == {"gamma_gamma"} and "no spread of spend" in spend["gamma_gamma"]


def test_last_period_revenue_arithmetic():
    X = pd.DataFrame({"revenue_7d": [7.0, 0.0], "revenue_30d": [30.0, np.nan], "revenue_90d": [90.0, 9.0]})
    np.testing.assert_allclose(LastPeriodRevenue(28).fit(X).predict(X), [28.0, 0.0])
    np.testing.assert_allclose(LastPeriodRevenue(7).fit(X).predict(X), [7.0, 0.0])
    np.testing.assert_allclose(LastPeriodRevenue(365).fit(X).predict(X), [365.0, 36.5])
    np.testing.assert_allclose(LastPeriodRevenue(14, window="revenue_90d").fit(X).predict(X), [14.0, 1.4])
    assert [comparable_window(h) for h in (1, 7, 28, 30, 60, 90, 365)] == [
        "revenue_7d", "revenue_7d", "revenue_30d", "revenue_30d", "revenue_90d", "revenue_90d", "revenue_90d"
    ]
    with pytest.raises(ChurnkitError, match="window_days"):
        LastPeriodRevenue(28, window="spend_6w").fit(X.assign(spend_6w=1.0))


def test_bgnbd_without_pymc_marketing_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "pymc_marketing", None)
    X = pd.DataFrame({"clv_frequency": [1.0], "clv_recency_days": [3.0], "clv_age_days": [9.0], "clv_monetary": [5.0]})
    with pytest.raises(ChurnkitError, match=r"pip install 'churnkit\[clv\]'"):
        BGNBDBaseline().fit(X)


def cdnow_summary(cdnow_dir) -> pd.DataFrame:
    """The published 39-week calibration summary (times in weeks) as churnkit CLV features."""
    d = pd.read_csv(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")
    return pd.DataFrame(
        {
            "clv_frequency": d["x"].astype(float),
            "clv_recency_days": d["t_x"].astype(float),
            "clv_age_days": d["T"].astype(float),
            "clv_monetary": d["zbar"].where(d["x"] > 0).astype(float),
        }
    )


@pytest.mark.slow
def test_bgnbd_reproduces_published_cdnow_figures(cdnow_dir):
    pytest.importorskip("pymc_marketing")
    X = cdnow_summary(cdnow_dir)
    # unit_days=1: the summary is already in weeks, so "days" here are weeks; H = 39 weeks
    model = BGNBDBaseline(horizon_days=39, unit_days=1.0).fit(X)
    published = {"r": 0.2426, "alpha": 4.4137, "a": 0.7930, "b": 2.4262, "p": 6.25, "q": 3.74, "v": 15.44}
    for k, v in published.items():
        assert model.params_[k] == pytest.approx(v, rel=0.01), k
    one = pd.DataFrame({"clv_frequency": [2.0], "clv_recency_days": [30.43], "clv_age_days": [38.86], "clv_monetary": [22.35]})
    assert model.transform(one)["bgnbd_expected_purchases"].iloc[0] == pytest.approx(1.226, abs=0.002)
    out = model.transform(X)
    assert list(out.columns) == list(BGNBD_OUTPUTS) and out.notna().all().all()
    # conditional expectations by calibration repeat count, as in the paper's table
    by_x = out["bgnbd_expected_purchases"].groupby(X["clv_frequency"].clip(upper=7)).mean()
    np.testing.assert_allclose(by_x.loc[[0, 1, 2, 7]], [0.225, 0.523, 1.044, 6.157], rtol=0.03)
    assert ((out["bgnbd_p_purchase"] > 0) & (out["bgnbd_p_purchase"] < 1)).all()
    assert (out["bgnbd_p_purchase"] <= out["bgnbd_p_alive"] + 1e-9).all()
    # per cutoff: the second, tiny cutoff cannot be fitted and is left missing
    frame = pd.concat([X.assign(cutoff=1), X.head(5).assign(cutoff=2)], ignore_index=True)
    feats = bgnbd_features(frame, horizon_days=39, unit_days=1.0)
    assert feats.index.equals(frame.index)
    np.testing.assert_allclose(feats.iloc[: len(X)].to_numpy(), out.to_numpy())
    assert feats.iloc[len(X) :].isna().all().all()
