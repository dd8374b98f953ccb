"""Uplift learners and metrics on seeded randomised data with a known heterogeneous effect.

The effect ``tau(x)`` (log-odds scale) depends on features 0 and 1 and is negative for
about 40% of users; the learners estimate the probability-scale effect
``sigmoid(base + tau) - sigmoid(base)``. Learners are fitted on one sample and scored on an
independent one (in-sample Qini rewards fitting the noise).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.campaigns.uplift import (
    DRLearner,
    TLearner,
    XLearner,
    auuc,
    bootstrap_interval,
    qini_coefficient,
    qini_curve,
    uplift_at_k,
    uplift_curve,
)
from churnkit.errors import ChurnkitError

N_USERS = 8_000
LEARNERS = [TLearner, XLearner, DRLearner]


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def make_data(seed: int, n: int = N_USERS) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 6))
    t = rng.binomial(1, 0.5, n)
    base = -0.5 + 0.8 * X[:, 2] - 0.6 * X[:, 3] + 0.4 * X[:, 4]
    tau = 0.8 * X[:, 0] + 0.5 * (X[:, 1] > 0) - 0.1
    effect = _sigmoid(base + tau) - _sigmoid(base)
    y = rng.binomial(1, np.where(t == 1, _sigmoid(base + tau), _sigmoid(base)))
    return {"X": X, "t": t, "y": y, "tau": tau, "effect": effect}


@pytest.fixture(scope="module")
def train() -> dict[str, np.ndarray]:
    return make_data(0)


@pytest.fixture(scope="module")
def test() -> dict[str, np.ndarray]:
    return make_data(1)


@pytest.fixture(scope="module")
def predictions(train, test) -> dict[str, np.ndarray]:
    return {
        cls.__name__: cls(random_state=0).fit(train["X"], train["t"], train["y"]).predict(test["X"])
        for cls in LEARNERS
    }


def test_data_has_negative_effects(train):
    assert 0.2 < (train["effect"] < 0).mean() < 0.6


# ------------------------------------------------------------------------------- learners


@pytest.mark.parametrize("name", [c.__name__ for c in LEARNERS])
def test_learner_recovers_the_effect(name, predictions, test):
    pred = predictions[name]
    assert pred.shape == (N_USERS,)
    assert np.isfinite(pred).all()
    # measured out of sample vs effect (vs tau): T 0.84 (0.81), X 0.89 (0.88), DR 0.83 (0.84);
    # other seeds down to 0.75
    assert np.corrcoef(pred, test["effect"])[0, 1] > 0.7
    assert np.corrcoef(pred, test["tau"])[0, 1] > 0.65


@pytest.mark.parametrize("name", [c.__name__ for c in LEARNERS])
def test_learner_reaches_most_of_the_oracle_qini(name, predictions, test):
    oracle = qini_coefficient(test["effect"], test["t"], test["y"])
    share = qini_coefficient(predictions[name], test["t"], test["y"]) / oracle
    # measured: T 0.85, X 0.88, DR 0.82 (other seeds down to 0.70)
    assert share > 0.6


def test_learners_follow_sklearn_conventions(train):
    learner = XLearner(base_params={"n_estimators": 20}, propensity=0.5, random_state=3)
    assert learner.get_params() == {
        "base_params": {"n_estimators": 20},
        "outcome": "binary",
        "propensity": 0.5,
        "random_state": 3,
    }
    assert not hasattr(learner, "propensity_")  # __init__ stores parameters only
    fitted = learner.fit(train["X"], train["t"], train["y"])
    assert fitted is learner
    assert learner.propensity_ == 0.5
    assert TLearner().fit(train["X"], train["t"], train["y"]).propensity_ == pytest.approx(
        train["t"].mean()
    )


@pytest.mark.parametrize("cls", LEARNERS)
def test_learners_are_seeded(cls, train):
    X, t, y = train["X"][:2000], train["t"][:2000], train["y"][:2000]
    params = {"n_estimators": 20}
    a = cls(base_params=params, random_state=7).fit(X, t, y).predict(X[:50])
    b = cls(base_params=params, random_state=7).fit(X, t, y).predict(X[:50])
    np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("cls", LEARNERS)
def test_continuous_outcome(cls):
    rng = np.random.default_rng(4)
    n = 3000
    X = rng.normal(size=(n, 4))
    t = rng.binomial(1, 0.3, n)
    tau = 2.0 * X[:, 0]
    y = X[:, 1] + tau * t + rng.normal(scale=1.0, size=n)
    pred = cls(outcome="continuous", propensity=0.3).fit(X, t, y).predict(X)
    assert np.corrcoef(pred, tau)[0, 1] > 0.8


def test_dataframe_input(train):
    X = pd.DataFrame(train["X"][:2000], columns=[f"f{i}" for i in range(6)])
    model = TLearner(base_params={"n_estimators": 20}).fit(X, train["t"][:2000], train["y"][:2000])
    assert model.predict(X.head(10)).shape == (10,)


# ------------------------------------------------------------------------------- metrics


def test_qini_of_true_effect_beats_random(test):
    rng = np.random.default_rng(11)
    oracle = qini_coefficient(test["effect"], test["t"], test["y"])
    random = [qini_coefficient(rng.normal(size=N_USERS), test["t"], test["y"]) for _ in range(5)]
    assert oracle > 0.08  # measured 0.133; random scores within about 0.01 of 0
    assert max(abs(r) for r in random) < oracle / 2
    assert auuc(test["effect"], test["t"], test["y"]) > max(
        auuc(rng.normal(size=N_USERS), test["t"], test["y"]) for _ in range(3)
    )


def test_qini_curve_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    t = np.array([1, 0, 1, 0, 1, 0])
    y = np.array([1, 0, 1, 1, 0, 0])
    curve = qini_curve(scores, t, y)
    assert list(curve.columns) == ["fraction_targeted", "n_targeted", "incremental_gain", "random"]
    assert curve["n_targeted"].tolist() == [0, 1, 2, 3, 4, 5, 6]
    # Q(k) = Y_t - Y_c * N_t / N_c; ratio term 0 before the first control user
    expected = [0.0, 1.0, 1.0, 2.0, 2.0 - 1.0 * 2 / 2, 2.0 - 1.0 * 3 / 2, 2.0 - 1.0 * 3 / 3]
    np.testing.assert_allclose(curve["incremental_gain"], expected)
    np.testing.assert_allclose(curve["random"], curve["fraction_targeted"] * 1.0)
    # uplift curve: (mean_t - mean_c) * k
    u = uplift_curve(scores, t, y)
    np.testing.assert_allclose(u["incremental_gain"].iloc[-1], (2 / 3 - 1 / 3) * 6)


def test_qini_ties_are_targeted_together():
    curve = qini_curve(np.array([1.0, 1.0, 0.0, 0.0]), [1, 0, 1, 0], [1, 0, 0, 0])
    assert curve["n_targeted"].tolist() == [0, 2, 4]


def test_perfect_ranking_has_coefficient_one():
    rng = np.random.default_rng(2)
    t = rng.binomial(1, 0.5, 500)
    y = rng.binomial(1, 0.3, 500)
    perfect = y * t - y * (1 - t)
    assert qini_coefficient(perfect, t, y) == pytest.approx(1.0)
    assert auuc(perfect, t, y) == pytest.approx(1.0)
    assert qini_coefficient(-perfect, t, y) < 0


def test_uplift_at_k_matches_true_effect_in_oracle_top_decile(test):
    top = np.argsort(-test["effect"])[: N_USERS // 10]
    truth = test["effect"][top].mean()
    measured = uplift_at_k(test["effect"], test["t"], test["y"], k=0.1)
    # 800 users: the difference of means has a standard error of about 0.033
    assert measured == pytest.approx(truth, abs=0.1)
    assert uplift_at_k(test["effect"], test["t"], test["y"], k=1.0) == pytest.approx(
        test["y"][test["t"] == 1].mean() - test["y"][test["t"] == 0].mean()
    )


def test_bootstrap_interval(test):
    est, low, high = bootstrap_interval(
        qini_coefficient, test["effect"], test["t"], test["y"], n=100, seed=0
    )
    assert est == pytest.approx(qini_coefficient(test["effect"], test["t"], test["y"]))
    assert low < est < high
    assert high - low > 0
    again = bootstrap_interval(
        qini_coefficient, test["effect"], test["t"], test["y"], n=100, seed=0
    )
    assert again == (est, low, high)
    est_k, low_k, high_k = bootstrap_interval(
        uplift_at_k, test["effect"], test["t"], test["y"], n=100, seed=1, alpha=0.1
    )
    assert low_k < est_k < high_k


# ------------------------------------------------------------------------------- bad input


def _small(n: int = 100, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 3)), np.arange(n) % 2, rng.binomial(1, 0.5, n)


@pytest.mark.parametrize("cls", LEARNERS)
@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda X, t, y: (X, np.where(t == 1, 2, 0), y), "treatment must be 0/1"),
        (lambda X, t, y: (X, np.ones_like(t), y), "only one arm"),
        (lambda X, t, y: (X, np.zeros_like(t), y), "only one arm"),
        (lambda X, t, y: (X[:-1], t, y), "lengths differ"),
        (lambda X, t, y: (X, t, y[:-3]), "lengths differ"),
        (lambda X, t, y: (X, np.r_[np.ones(90), np.zeros(10)].astype(int), y), "at least 20"),
        (lambda X, t, y: (X, t, y * 3.0), "y in {0, 1}"),
    ],
)
def test_bad_input(cls, mutate, message):
    X, t, y = mutate(*_small())
    with pytest.raises(ChurnkitError, match=message) as info:
        cls().fit(X, t, y)
    assert "\n" not in str(info.value)


def test_bad_parameters_and_unfitted():
    X, t, y = _small()
    with pytest.raises(ChurnkitError, match="propensity must be in"):
        TLearner(propensity=1.0).fit(X, t, y)
    with pytest.raises(ChurnkitError, match="outcome must be"):
        TLearner(outcome="count").fit(X, t, y)
    with pytest.raises(ChurnkitError, match="not fitted"):
        DRLearner().predict(X)
    with pytest.raises(ChurnkitError, match="features"):
        TLearner(base_params={"n_estimators": 5}).fit(X, t, y).predict(X[:, :2])


def test_metrics_bad_input():
    with pytest.raises(ChurnkitError, match="treatment must be 0/1"):
        qini_curve([0.1, 0.2], [0, 3], [1, 0])
    with pytest.raises(ChurnkitError, match="lengths differ"):
        qini_coefficient([0.1, 0.2, 0.3], [0, 1], [1, 0])
    with pytest.raises(ChurnkitError, match="only one arm"):
        uplift_at_k([0.1, 0.2], [1, 1], [1, 0])
    with pytest.raises(ChurnkitError, match="k must be"):
        uplift_at_k([0.1, 0.2], [0, 1], [1, 0], k=0)
