"""Baselines on the model's own rows: which ones, with what, and what happens without their columns."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.metrics import classifier_metrics, ltv_metrics
from churnkit.training.comparisons import BASELINES, BaselineRows, baseline_scores

RFM = ["days_since_last_activity", "days_since_last_purchase", "purchases_total", "revenue_total", "clv_frequency",
       "clv_recency_days", "clv_age_days", "clv_monetary"]


def customers(n: int, seed: int, cutoff: str = "2024-03-01") -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Feature rows with known churn odds (silence up, purchases down), their churn labels
    and their revenue in the horizon."""
    rng = np.random.default_rng(seed)
    purchases = rng.poisson(3.0, n).astype(float)
    age = rng.uniform(60, 300, n)
    silence = rng.exponential(20.0, n)
    X = pd.DataFrame({
        "days_since_last_activity": silence,
        "days_since_last_purchase": np.where(purchases > 0, silence + rng.exponential(5.0, n), np.nan),
        "purchases_total": purchases,
        "revenue_total": purchases * rng.gamma(2.0, 20.0, n),
        "clv_frequency": np.maximum(purchases - 1, 0),
        "clv_recency_days": np.where(purchases > 1, np.maximum(age - silence, 0), 0.0),
        "clv_age_days": np.where(purchases > 0, age, np.nan),
        "clv_monetary": np.where(purchases > 1, rng.gamma(2.0, 20.0, n), np.nan),
        "sessions_7d": rng.poisson(2.0, n).astype(float),
    })
    churned = (rng.random(n) < 1 / (1 + np.exp(-(0.08 * silence - 0.4 * purchases)))).astype(float)
    revenue = (1 - churned) * rng.gamma(2.0, 15.0, n) * (rng.random(n) < 0.6)
    return X, churned, revenue


def rows(kind: str, drop: tuple[str, ...] = ()) -> tuple[BaselineRows, np.ndarray]:
    pick = {"churn": 1, "purchase": 1, "revenue": 2}[kind]
    parts = [customers(n, s) for n, s in ((1500, 1), (600, 2), (800, 3))]
    ys = [p[pick] if kind != "purchase" else 1 - p[1] for p in parts]
    (fX, _, _), (cX, _, _), (tX, _, _) = parts
    d = lambda X: X.drop(columns=list(drop))
    return BaselineRows(d(fX), ys[0], d(cX), ys[1], d(tX), np.full(800, np.datetime64("2024-03-01"))), ys[2]


@pytest.mark.parametrize("kind", ["churn", "purchase"])
def test_classifier_baselines_on_the_same_rows(kind):
    r, y = rows(kind)
    out = baseline_scores(kind, 28, r, RFM, bgnbd=False, seed=1)
    assert list(out.scores) == ["recency", "rfm", "linear_rfm", "lgbm_rfm"] and out.notes == []
    assert set(out.scores) <= set(BASELINES)
    for name, s in out.scores.items():
        assert s.shape == (800,) and ((s >= 0) & (s <= 1)).all(), name
        assert classifier_metrics(y, s)["roc_auc"] > 0.6, name
    # the plain model learns only from the RFM features, never the others
    assert out.info["lgbm_rfm"]["features"] == RFM and "sessions_7d" not in out.info["lgbm_rfm"]["features"]
    own = "days_since_last_purchase" if kind == "purchase" else "days_since_last_activity"
    assert out.info["recency"]["columns"] == [own]
    assert out.info["rfm"]["columns"] == ["days_since_last_activity", "purchases_total", "revenue_total"]
    # the logistic reads the logs of the RFM core it finds, with a was-missing term where needed
    terms = out.info["linear_rfm"]["coefficients"]
    assert "days_since_last_purchase_missing" in terms and "sessions_7d" not in str(terms)


def test_revenue_baselines_last_period_and_plain_tweedie():
    r, y = rows("revenue")
    r = BaselineRows(r.fit_X.assign(revenue_30d=r.fit_X.revenue_total / 4), r.fit_y,
                     r.calib_X.assign(revenue_30d=r.calib_X.revenue_total / 4), r.calib_y,
                     r.test_X.assign(revenue_30d=r.test_X.revenue_total / 4), r.test_cutoff)
    out = baseline_scores("revenue", 28, r, RFM, bgnbd=False, seed=1)
    assert list(out.scores) == ["last_period", "linear_rfm", "lgbm_rfm"]
    assert out.info["linear_rfm"]["link"] == "log" and ltv_metrics(y, out.scores["linear_rfm"])["gini_norm"] > 0.2
    assert out.info["lgbm_rfm"]["objective"] == "tweedie" and (out.scores["lgbm_rfm"] > 0).all()
    assert ltv_metrics(y, out.scores["lgbm_rfm"])["gini_norm"] > 0.2
    np.testing.assert_allclose(out.scores["last_period"], r.test_X.revenue_total / 4 * 28 / 30)


def test_missing_columns_leave_a_baseline_out_with_a_note_not_an_error():
    r, _ = rows("churn", drop=("purchases_total", "revenue_total"))  # e.g. dropped as constant
    out = baseline_scores("churn", 28, r, RFM, bgnbd=False)
    assert out.info["rfm"]["columns"] == ["days_since_last_activity"] and out.notes == []
    r, _ = rows("churn", drop=tuple(RFM))
    out = baseline_scores("churn", 28, r, RFM, bgnbd=False)
    assert out.scores == {} and len(out.notes) == 3
    assert "no recency feature" in out.notes[0] and "linear RFM baseline left out" in out.notes[1]
    assert "no RFM feature" in out.notes[2]


@pytest.mark.slow
def test_bgnbd_scores_the_quantity_each_kind_asks_for_and_names_a_degenerate_fit(cdnow_dir):
    pytest.importorskip("pymc_marketing", reason="the clv extra is not installed")
    r, _ = rows("churn")
    d = pd.read_csv(cdnow_dir / "cdnow_customers_summary_with_transactions.csv").head(800)  # weeks
    cdnow = r.test_X.assign(clv_frequency=d["x"].astype(float), clv_recency_days=d["t_x"] * 7.0,
                            clv_age_days=d["T"] * 7.0, clv_monetary=d["zbar"].where(d["x"] > 0))
    r = BaselineRows(r.fit_X, r.fit_y, r.calib_X, r.calib_y, cdnow, r.test_cutoff)
    churn = baseline_scores("churn", 91, r, RFM, bgnbd=True)
    buy = baseline_scores("purchase", 91, r, RFM, bgnbd=True)
    assert churn.notes == [] and 0 < churn.info["bgnbd"]["2024-03-01"]["params"]["a"] < 5
    # P(no purchase in H) = 1 - P(alive and buys in H), never 1 - P(alive)
    np.testing.assert_allclose(churn.scores["bgnbd"], 1.0 - buy.scores["bgnbd"])
    assert ((buy.scores["bgnbd"] > 0) & (buy.scores["bgnbd"] < 1)).all()
    # fitted on the customer base at the cutoff, scored on the (fewer) test rows
    day = r.test_cutoff[0]
    few = BaselineRows(r.fit_X, r.fit_y, r.calib_X, r.calib_y, cdnow.iloc[:200], r.test_cutoff[:200],
                       customers=lambda: cdnow.assign(cutoff=day))
    sub = baseline_scores("churn", 91, few, RFM, bgnbd=True)
    np.testing.assert_allclose(sub.scores["bgnbd"], churn.scores["bgnbd"][:200])
    assert sub.info["bgnbd"]["2024-03-01"]["fitted_on"] == "customer base, 800 users"
    # everyone keeps buying at a steady rate: no dropout to identify
    rng = np.random.default_rng(0)
    age = rng.uniform(100, 300, 800)
    x = rng.poisson(rng.gamma(1.0, 1 / 30, 800) * age).astype(float)
    steady = cdnow.assign(clv_frequency=x, clv_age_days=age, clv_recency_days=np.where(x > 0, age * 0.97, 0.0),
                          clv_monetary=np.where(x > 0, 10.0, np.nan))
    out = baseline_scores("churn", 91, BaselineRows(r.fit_X, r.fit_y, r.calib_X, r.calib_y, steady, r.test_cutoff),
                          RFM, bgnbd=None)
    assert "bgnbd" not in out.scores and "rfm" in out.scores
    assert any("bgnbd baseline left out at 2024-03-01: degenerate fit on the test rows (800 users)" in n
               and "no dropout" in n for n in out.notes)
