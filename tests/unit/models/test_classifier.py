"""PropensityClassifier: sklearn conventions, input checks, calibration, determinism, pickling."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone

from churnkit.config import classifier_settings
from churnkit.errors import ChurnkitError, ConfigError
from churnkit.models.checks import check_features
from churnkit.models.classifier import SKOPS_TRUSTED_TYPES, PropensityClassifier, choose_calibration

FEATURES = ["recency", "frequency", "monetary", "trend", "noise"]
FAST = {"learning_rate": 0.1, "num_leaves": 15, "min_data_in_leaf": 20}


def make_data(n: int, seed: int) -> tuple[pd.DataFrame, pd.Series]:
    """Known logistic truth over five features, some NaN (as real features have)."""
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(rng.normal(size=(n, len(FEATURES))), columns=FEATURES)
    logit = -1.2 + 1.5 * X.recency - 1.0 * X.frequency + 0.5 * X.trend * X.monetary
    y = pd.Series((rng.random(n) < 1 / (1 + np.exp(-logit))).astype("float64"), name="label")
    X.loc[rng.random(n) < 0.05, "monetary"] = np.nan
    return X, y


@pytest.fixture(scope="module")
def data():
    return make_data(1500, 1), make_data(1000, 2), make_data(3000, 3)


def model(**kw) -> PropensityClassifier:
    return PropensityClassifier(**({"params": FAST, "n_estimators": 150, "n_jobs": 1} | kw))


@pytest.fixture(scope="module")
def fitted(data):
    (X, y), (Xv, yv), _ = data
    return model().fit(X, y, eval_set=(Xv, yv))


def ece(y: np.ndarray, p: np.ndarray, bins: int = 10) -> float:
    edges = np.linspace(0, 1, bins + 1)
    idx = np.clip(np.digitize(p, edges) - 1, 0, bins - 1)
    return float(sum(abs(y[idx == b].mean() - p[idx == b].mean()) * np.mean(idx == b)
                     for b in range(bins) if (idx == b).any()))


# --------------------------------------------------------------------------- conventions


def test_init_only_stores_params_and_clones() -> None:
    est = PropensityClassifier(params={"num_leaves": 7}, calibration="sigmoid", random_state=3)
    twin = clone(est)
    assert twin.get_params() == est.get_params()
    assert twin.params == {"num_leaves": 7} and twin.params is not est.params
    assert not hasattr(twin, "booster_")
    # invalid values are only checked at fit, as sklearn expects
    PropensityClassifier(calibration="bogus")


def test_fit_returns_self_with_fitted_attributes(data, fitted) -> None:
    (X, _), _, _ = data
    assert isinstance(fitted, PropensityClassifier)
    assert list(fitted.feature_names_in_) == FEATURES and fitted.n_features_in_ == 5
    assert fitted.classes_.tolist() == [0, 1]
    assert 1 <= fitted.best_iteration_ <= 150
    assert fitted.booster_.num_trees() == fitted.best_iteration_
    assert fitted.calibration_ in {"none", "sigmoid", "isotonic"}
    assert set(fitted.calibration_scores_) == {"none", "sigmoid", "isotonic"}
    est = model()
    assert est.fit(X, data[0][1], eval_set=[data[1]]) is est  # list-of-pairs form too


def test_predictions_shapes_and_contributions(data, fitted) -> None:
    _, _, (Xt, _) = data
    proba = fitted.predict_proba(Xt)
    assert proba.shape == (len(Xt), 2)
    assert np.allclose(proba.sum(axis=1), 1) and ((proba >= 0) & (proba <= 1)).all()
    assert set(np.unique(fitted.predict(Xt))) <= {0, 1}
    contrib = fitted.contributions(Xt)
    assert list(contrib.columns) == [*FEATURES, "bias"]
    assert contrib.index.equals(Xt.index)
    assert np.allclose(contrib.sum(axis=1), fitted.predict_raw(Xt))
    # column order does not matter, names do
    assert np.array_equal(fitted.predict_proba(Xt[FEATURES[::-1]]), proba)
    assert fitted.feature_importance().index[0] in {"recency", "frequency"}


def test_not_fitted_is_a_clear_error(data) -> None:
    with pytest.raises(ChurnkitError, match="not fitted"):
        PropensityClassifier().predict_proba(data[0][0])


# --------------------------------------------------------------------------- input checks


@pytest.mark.parametrize(
    ("change", "pattern"),
    [
        (lambda X: X.drop(columns=["trend"]), "missing 1 \\('trend'\\)"),
        (lambda X: X.assign(extra=1.0, more=2.0), "unexpected 2 \\('extra', 'more'\\)"),
        (lambda X: X.assign(trend="x"), "non-numeric .*'trend'"),
        (lambda X: X.assign(noise=np.r_[np.inf, -np.inf, np.zeros(len(X) - 2)]),
         "infinite values .*'noise' \\(2 rows\\)"),
        (lambda X: X.to_numpy(), "expected a DataFrame"),
    ],
)
def test_bad_features_give_one_line_errors(data, fitted, change, pattern) -> None:
    _, _, (Xt, _) = data
    for call in (fitted.predict_proba, fitted.predict_raw, fitted.contributions):
        with pytest.raises(ChurnkitError, match=pattern) as err:
            call(change(Xt.copy()))
        assert "\n" not in str(err.value)


def test_many_missing_names_are_summarised() -> None:
    X = pd.DataFrame({"a": [1.0]})
    with pytest.raises(ChurnkitError) as err:
        check_features(X, [f"f{i}" for i in range(40)], where="score")
    msg = str(err.value)
    assert msg.startswith("score: ") and "missing 40 ('f0', 'f1', 'f2', ... +37 more)" in msg
    assert "unexpected 1 ('a')" in msg


def test_nan_is_allowed_and_ints_become_float(data, fitted) -> None:
    _, _, (Xt, _) = data
    Xn = Xt.head(5).copy()
    Xn.loc[:, :] = np.nan
    assert np.isfinite(fitted.predict_proba(Xn)).all()
    ints = pd.DataFrame({"a": [1, 2], "b": [True, False]})
    assert (check_features(ints, ["b", "a"]).dtypes == "float64").all()


def test_bad_labels_and_params(data) -> None:
    (X, y), _, _ = data
    with pytest.raises(ChurnkitError, match="must be 0 or 1, found 2.0"):
        model().fit(X, y.replace(1.0, 2.0))
    with pytest.raises(ChurnkitError, match="need both outcomes|needs both outcomes"):
        model().fit(X, y * 0)
    with pytest.raises(ChurnkitError, match="unknown LightGBM parameter 'num_leafs' .*'num_leaves'"):
        model(params={"num_leafs": 3}).fit(X, y)
    with pytest.raises(ChurnkitError, match="set n_estimators"):
        model(params={"n_estimators": 3}).fit(X, y)
    with pytest.raises(ChurnkitError, match="both set LightGBM parameter 'min_data_in_leaf'"):
        model(params={"min_child_samples": 3, "min_data_in_leaf": 4}).fit(X, y)
    one = y * 0
    one.iloc[0] = 1.0
    with pytest.raises(ChurnkitError, match="only 1 row\\(s\\) of the rarer outcome"):
        model().fit(X, one)
    with pytest.raises(ChurnkitError, match="cannot store feature names .*'a:b'"):
        model().fit(X.rename(columns={"noise": "a:b"}), y)
    with pytest.raises(ChurnkitError, match="calibration must be one of"):
        model(calibration="platt").fit(X, y)


def test_feature_manifest_names_the_features(data) -> None:
    (X, y), (Xv, yv), _ = data
    manifest = [{"name": n, "description": n, "unit": "x"} for n in FEATURES[:3]]
    with pytest.raises(ChurnkitError, match="fit: .*unexpected 2 \\('trend', 'noise'\\)"):
        model(feature_manifest=manifest).fit(X, y)
    est = model(feature_manifest=manifest).fit(X[FEATURES[:3]], y, eval_set=(Xv[FEATURES[:3]], yv))
    assert list(est.feature_names_in_) == FEATURES[:3]


def test_settings_parse_with_one_line_errors() -> None:
    s = classifier_settings({"n_estimators": 300, "params": {"eta": 0.1}, "calibration": "sigmoid"})
    est = PropensityClassifier.from_settings(s, params={"num_leaves": 9}, random_state=5)
    assert est.params == {"learning_rate": 0.1, "num_leaves": 9} and est.n_estimators == 300
    with pytest.raises(ConfigError, match="model: unknown key 'n_estimator'"):
        classifier_settings({"n_estimator": 3})
    with pytest.raises(ChurnkitError, match="model.params: unknown LightGBM parameter 'lerning_rate'"):
        classifier_settings({"params": {"lerning_rate": 0.1}})


# --------------------------------------------------------------------------- calibration


def test_calibration_repairs_a_miscalibrated_model(data) -> None:
    """Up-weighting positives inflates LightGBM's probabilities; calibration on a later
    evaluation set brings them back (ECE measured on a third, unseen set)."""
    (X, y), (Xv, yv), (Xt, yt) = data
    skewed = FAST | {"scale_pos_weight": 6.0}
    raw = model(params=skewed, calibration="none").fit(X, y, eval_set=(Xv, yv))
    cal = model(params=skewed, calibration="auto").fit(X, y, eval_set=(Xv, yv))
    p_raw, p_cal = raw.predict_proba(Xt)[:, 1], cal.predict_proba(Xt)[:, 1]
    assert cal.calibration_ in {"sigmoid", "isotonic"}
    assert ece(yt.to_numpy(), p_cal) < 0.5 * ece(yt.to_numpy(), p_raw)
    assert ece(yt.to_numpy(), p_raw) > 0.1
    # ranking is the booster's, calibration is monotone
    assert np.array_equal(raw.predict_raw(Xt), cal.predict_raw(Xt))
    for kind in ("sigmoid", "isotonic"):
        est = model(params=skewed, calibration=kind).fit(X, y, eval_set=(Xv, yv))
        assert est.calibration_ == kind
        assert ece(yt.to_numpy(), est.predict_proba(Xt)[:, 1]) < ece(yt.to_numpy(), p_raw)


def test_auto_keeps_raw_probabilities_when_they_are_right() -> None:
    rng = np.random.default_rng(0)
    margin = rng.normal(size=4000)
    y = (rng.random(4000) < 1 / (1 + np.exp(-margin))).astype(float)
    kind, scores = choose_calibration(margin, y)
    assert kind == "none" and scores["isotonic"]["log_loss"] > scores["none"]["log_loss"]
    assert choose_calibration(margin * 3, y)[0] in {"sigmoid", "isotonic"}  # overconfident
    assert choose_calibration(margin, np.r_[1.0, np.zeros(3999)])[0] == "none"


def test_auto_calibration_is_never_worse_than_the_raw_probabilities() -> None:
    """Whatever auto picks has out-of-fold Brier and ECE no worse than none's, and every
    candidate's figures are recorded for the report."""
    rng = np.random.default_rng(4)
    for scale, shift, n in ((1.0, 0.0, 3000), (3.0, 0.0, 3000), (1.0, 1.0, 3000), (0.6, -0.5, 300), (1.0, 0.0, 60)):
        margin = rng.normal(size=n)
        y = (rng.random(n) < 1 / (1 + np.exp(-margin))).astype(float)
        kind, scores = choose_calibration(margin * scale + shift, y)
        assert set(scores) == {"none", "sigmoid", "isotonic"}
        assert all(set(s) == {"log_loss", "brier", "ece"} for s in scores.values())
        assert scores[kind]["brier"] <= scores["none"]["brier"]
        assert scores[kind]["ece"] <= scores["none"]["ece"]
        if n == 3000:  # right stays raw, overconfident or shifted gets repaired
            assert (kind == "none") == (scale == 1.0 and shift == 0.0), (scale, shift, kind)


def test_a_lower_log_loss_alone_does_not_buy_a_worse_ece() -> None:
    """80 validation rows: Platt scaling wins on out-of-fold log loss but its ECE is worse
    than the raw probabilities', so the raw ones are kept."""
    rng = np.random.default_rng(23)
    n, scale = int(rng.choice([80, 150, 300, 600])), rng.choice([0.8, 1.0, 1.2])  # how the case was found
    rng.choice([-0.2, 0.0, 0.2])
    assert (n, scale) == (80, 1.2)
    margin = rng.normal(size=80)
    y = (rng.random(80) < 1 / (1 + np.exp(-margin))).astype(float)
    kind, scores = choose_calibration(margin * scale, y)
    assert scores["sigmoid"]["log_loss"] < scores["none"]["log_loss"] * 0.995
    assert scores["sigmoid"]["ece"] > scores["none"]["ece"]
    assert kind == "none"


def test_without_eval_set(data) -> None:
    (X, y), _, (Xt, _) = data
    held = model().fit(X, y)  # documented fallback: stratified random holdout
    assert held.calibration_ in {"none", "sigmoid", "isotonic"} and held.best_iteration_ <= 150
    plain = model(holdout=0.0, n_estimators=40).fit(X, y)
    assert plain.calibration_ == "none" and plain.best_iteration_ == 40
    assert plain.predict_proba(Xt).shape == (len(Xt), 2)


def test_one_outcome_eval_set(data) -> None:
    (X, y), (Xv, yv), _ = data
    zero = yv * 0
    assert model().fit(X, y, eval_set=(Xv, zero)).calibration_ == "none"
    with pytest.raises(ChurnkitError, match="one outcome only"):
        model(calibration="isotonic").fit(X, y, eval_set=(Xv, zero))


# --------------------------------------------------------------------------- reproducibility


def test_same_seed_same_model(data) -> None:
    (X, y), (Xv, yv), (Xt, _) = data
    a = model(random_state=7).fit(X, y, eval_set=(Xv, yv))
    b = model(random_state=7).fit(X, y, eval_set=(Xv, yv))
    c = model(random_state=8).fit(X, y, eval_set=(Xv, yv))
    assert np.array_equal(a.predict_proba(Xt), b.predict_proba(Xt))
    assert a.booster_.model_to_string() == b.booster_.model_to_string()
    assert not np.array_equal(a.predict_raw(Xt), c.predict_raw(Xt))  # bagging follows the seed


def test_pickle_round_trip(data, fitted) -> None:
    _, _, (Xt, _) = data
    back = pickle.loads(pickle.dumps(fitted))
    assert np.array_equal(back.predict_proba(Xt), fitted.predict_proba(Xt))
    assert back.get_params() == fitted.get_params()
    assert back.calibration_ == fitted.calibration_
    assert back.best_iteration_ == fitted.best_iteration_
    pd.testing.assert_frame_equal(back.contributions(Xt), fitted.contributions(Xt))


@pytest.mark.parametrize("calibration", ["sigmoid", "isotonic", "none"])
def test_skops_round_trip(data, calibration) -> None:
    """mlflow.sklearn saves with skops by default; our types must be listed as trusted."""
    sio = pytest.importorskip("skops.io")
    (X, y), (Xv, yv), (Xt, _) = data
    est = model(calibration=calibration, n_estimators=30).fit(X, y, eval_set=(Xv, yv))
    blob = sio.dumps(est)
    assert set(sio.get_untrusted_types(data=blob)) <= set(SKOPS_TRUSTED_TYPES)
    back = sio.loads(blob, trusted=SKOPS_TRUSTED_TYPES)
    assert np.array_equal(back.predict_proba(Xt), est.predict_proba(Xt))


def test_thread_count_rules() -> None:
    from churnkit.models.lgbm import resolve_threads

    assert resolve_threads(None, 15_000) == 1  # small sets stay single-threaded
    assert 1 <= resolve_threads(None, 10_000_000) <= (os.cpu_count() or 1)
    assert resolve_threads(-1) == 0 and resolve_threads(3) == 3
