"""LTV regressors on a synthetic zero-inflated problem whose expectation is known."""

from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
from scipy.stats import spearmanr
from sklearn.base import clone

from churnkit.errors import ChurnkitError
from churnkit.metrics import interval_metrics, normalized_gini
from churnkit.models.interval import RevenueInterval
from churnkit.models.ltv import HurdleLTV, LTVModel, TweedieLTV

FAST = {"n_estimators": 150, "learning_rate": 0.1, "num_leaves": 15}


def synthetic(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Buy with P = sigmoid(1.5 x0 - 0.5); spend ~ Gamma(k=2) with mean exp(3 + 0.6 x1).

    Returns features, realised revenue and the true E[revenue | x].
    """
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, 4)), columns=["x0", "x1", "noise0", "noise1"])
    X.loc[rng.random(n) < 0.05, "noise1"] = np.nan
    p = 1.0 / (1.0 + np.exp(-(1.5 * X["x0"] - 0.5)))
    mean_spend = np.exp(3.0 + 0.6 * X["x1"])
    buys = rng.random(n) < p
    y = np.where(buys, rng.gamma(2.0, mean_spend / 2.0), 0.0)
    return X, y, (p * mean_spend).to_numpy()


@pytest.fixture(scope="module")
def data():
    return synthetic(4000, 0), synthetic(1500, 1), synthetic(4000, 2)


@pytest.fixture(scope="module")
def fitted(data):
    (X, y, _), (Xe, ye, _), _ = data
    return {
        "hurdle": HurdleLTV(**FAST).fit(X, y, eval_set=(Xe, ye)),
        "tweedie": TweedieLTV(**FAST).fit(X, y, eval_set=(Xe, ye)),
        "ltv": LTVModel(**FAST).fit(X, y, eval_set=(Xe, ye)),
    }


@pytest.mark.parametrize("cls", [HurdleLTV, TweedieLTV, LTVModel])
def test_sklearn_conventions(cls, data):
    (X, y, _), _, _ = data
    est = cls(n_estimators=20, n_jobs=1)
    assert clone(est).get_params() == est.get_params()
    assert not [k for k in vars(est) if k.endswith("_")]  # __init__ only stores params
    assert est.fit(X, y) is est
    assert list(est.feature_names_in_) == list(X.columns) and est.n_features_in_ == 4
    again = pickle.loads(pickle.dumps(est))
    np.testing.assert_allclose(again.predict(X.head(50)), est.predict(X.head(50)))


@pytest.mark.parametrize("name", ["hurdle", "tweedie", "ltv"])
def test_models_beat_a_constant_and_rank_like_the_truth(name, fitted, data):
    (_, y_train, _), _, (Xt, yt, truth) = data
    pred = fitted[name].predict(Xt)
    assert (pred >= 0).all()
    mse_const = np.mean((yt - y_train.mean()) ** 2)
    assert np.mean((yt - pred) ** 2) < 0.95 * mse_const
    # close to the known expectation, and ranking most of what the truth ranks
    assert np.mean((pred - truth) ** 2) < 0.3 * np.mean((truth - truth.mean()) ** 2)
    assert normalized_gini(yt, pred) > 0.85 * normalized_gini(yt, truth)
    assert pred.mean() == pytest.approx(truth.mean(), rel=0.15)


def test_ltv_model_chooses_and_scores_both(fitted):
    m = fitted["ltv"]
    assert m.chosen_ in ("hurdle", "tweedie")
    assert set(m.scores_) == {"hurdle", "tweedie"}
    best = max(m.scores_, key=lambda k: m.scores_[k]["gini_norm"])
    gap = abs(m.scores_["hurdle"]["gini_norm"] - m.scores_["tweedie"]["gini_norm"])
    if gap > m.tie_tol:
        assert m.chosen_ == best


def test_choice_tie_goes_to_lower_rmse():
    m = LTVModel(tie_tol=0.01)
    scores = {"hurdle": {"gini_norm": 0.700, "rmse": 10.0}, "tweedie": {"gini_norm": 0.705, "rmse": 9.0}}
    assert m._choose(scores) == "tweedie"
    scores["tweedie"]["rmse"] = 11.0
    assert m._choose(scores) == "hurdle"
    scores["tweedie"]["gini_norm"] = 0.8
    assert m._choose(scores) == "tweedie"


def lognormal_spend(n: int, seed: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """As :func:`synthetic`, but the spend is log-normal (sigma 1): not the gamma the
    interval assumes, so only its calibration can make the coverage right."""
    X, _, _ = synthetic(n, seed)
    rng = np.random.default_rng(seed + 100)
    p = 1.0 / (1.0 + np.exp(-(1.5 * X["x0"] - 0.5)))
    mean_spend = np.exp(3.0 + 0.6 * X["x1"])
    y = np.where(rng.random(n) < p, mean_spend * np.exp(rng.normal(-0.5, 1.0, n)), 0.0)
    return X, y, (p * mean_spend).to_numpy()


@pytest.mark.parametrize("make", [synthetic, lognormal_spend], ids=["gamma", "lognormal"])
def test_nominal_80_percent_interval_covers_75_to_85_percent_of_held_out_rows(make, fitted, data):
    """Calibrated on one seeded sample (the last training cutoff's role), measured on another."""
    if make is synthetic:
        model, (Xt, yt, _) = fitted["ltv"], data[2]
    else:
        (X, y, _), (Xe, ye, _), (Xt, yt, _) = make(4000, 0), make(1500, 1), make(4000, 2)
        model = LTVModel(**FAST).fit(X, y, eval_set=(Xe, ye))
    lo, hi = model.predict_interval(Xt, 0.1, 0.9)
    assert (lo >= 0).all() and (lo <= hi).all()
    assert 0.75 <= interval_metrics(yt, lo, hi)["coverage"] <= 0.85
    cal = model.interval_calibration_
    assert cal["nominal"] == pytest.approx(0.8) and cal["rows"] == 1500
    assert cal["coverage"] >= 0.8 and 0.6 <= cal["content"] < 1
    # the width follows the prediction; ltv_low is above 0 exactly where a zero is unlikely
    pred = model.predict(Xt)
    assert spearmanr(hi - lo, pred).statistic > 0.7
    p_buy = model.candidates_["hurdle"].predict_parts(Xt)["p_revenue"].to_numpy()
    assert (lo[p_buy < 0.85] == 0).all() and (lo[p_buy > 0.95] > 0).all() and len(np.unique(lo)) > 20
    with pytest.raises(ChurnkitError, match="quantile 0.05 was not fitted"):
        model.predict_interval(Xt, 0.05, 0.9)


def test_interval_is_not_narrowed_past_meaning_when_zeros_dominate():
    """Nine in ten buy nothing: their [0, 0] alone covers 90%. The share held for buyers
    stops at three quarters of the nominal one and the over-coverage is recorded."""
    rng = np.random.default_rng(5)
    p = rng.uniform(0.0, 0.2, 3000)
    m = np.full(3000, 50.0)
    y = np.where(rng.random(3000) < p, rng.gamma(2.0, 25.0, 3000), 0.0)
    iv = RevenueInterval((0.1, 0.9)).fit(p, m, y)
    assert iv.content_ == pytest.approx(0.6) and iv.calibration_["coverage"] > 0.85
    low, high = iv.predict(np.array([0.05, 0.5, 0.99]), np.array([50.0, 50.0, 50.0]))
    assert low.tolist()[:2] == [0.0, 0.0] and low[2] > 0 and high[0] == 0 and 0 < high[1] < high[2]


@pytest.mark.parametrize("name", ["hurdle", "tweedie", "ltv"])
def test_contributions_sum_to_log_prediction(name, fitted, data):
    _, _, (Xt, _, _) = data
    model = fitted[name]
    c = model.contributions(Xt.head(200))
    assert list(c.columns) == [*Xt.columns, "bias"]
    np.testing.assert_allclose(c.sum(axis=1), np.log(model.predict(Xt.head(200))), rtol=1e-6, atol=1e-6)
    # the two signal features matter more than the noise features
    imp = c.drop(columns="bias").abs().mean()
    assert min(imp["x0"], imp["x1"]) > max(imp["noise0"], imp["noise1"])


def test_ltv_model_without_eval_set_holds_out_rows(data):
    (X, y, _), _, _ = data
    m = LTVModel(n_estimators=40, n_jobs=1).fit(X, y)
    assert m.chosen_ in ("hurdle", "tweedie") and len(m.predict(X.head(3))) == 3


def test_bad_input_is_a_one_line_error(fitted, data):
    (X, y, _), _, _ = data
    with pytest.raises(ChurnkitError, match="missing 1"):
        fitted["ltv"].predict(X.drop(columns="x1"))
    with pytest.raises(ChurnkitError, match="all 10 revenue labels are 0"):
        TweedieLTV().fit(X.head(10), np.zeros(10))
    with pytest.raises(ChurnkitError, match="negative"):
        HurdleLTV().fit(X.head(10), -np.ones(10))
    with pytest.raises(ChurnkitError, match="variance_power"):
        TweedieLTV(variance_power=2.5).fit(X, y)


def test_tuned_lightgbm_parameters_take_effect_under_one_name(data):
    """Tuning hands LightGBM names (bagging_fraction ...): each must reach the booster once,
    not sit beside the scikit-learn alias that LightGBM would use instead."""
    (X, y, _), _, _ = data
    fits = {f: TweedieLTV(**FAST, lgbm_params={"bagging_fraction": f}).fit(X, y) for f in (0.5, 0.9)}
    assert not np.allclose(fits[0.5].predict(X), fits[0.9].predict(X))
    params = fits[0.5].model_.booster_.params
    assert params["subsample"] == 0.5 and params["subsample_freq"] == 1 and "bagging_fraction" not in params
    with pytest.raises(ChurnkitError, match="both set LightGBM parameter"):
        TweedieLTV(**FAST, lgbm_params={"min_child_samples": 5, "min_data_in_leaf": 5}).fit(X, y)
