"""Uplift modelling: each user's effect of a campaign, learned from past randomised A/B tests.

The learners are scikit-learn style meta-learners on LightGBM. Each takes a feature matrix
``X``, the 0/1 ``treatment`` assignment and the outcome ``y`` (0/1 when ``outcome="binary"``,
any number when ``outcome="continuous"``) and predicts the individual effect: the expected
outcome if treated minus the expected outcome if not (on the probability scale for a binary
outcome).

- :class:`TLearner`: one model per arm; the effect is the difference of their predictions.
- :class:`XLearner`: Künzel et al. (2019). The T-learner's models impute each user's effect
  (a treated user's outcome minus the control model's prediction; the treated model's
  prediction minus a control user's outcome), one regressor per arm learns the imputed
  effects, and the two are blended with the propensity ``e``:
  ``tau(x) = e * tau_0(x) + (1 - e) * tau_1(x)``.
- :class:`DRLearner`: Kennedy (2020). Doubly robust (AIPW) pseudo-outcomes, cross-fitted on
  two folds, regressed on ``X``.

The propensity is the known randomisation share when given; otherwise the treated share of
the training data (the estimate for a randomised test, where it does not depend on ``x``).

Evaluation (all over one row per user: score, 0/1 treatment, outcome):

- :func:`qini_curve`: Radcliffe (2007), ``Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)`` over the
  top ``k`` users by score; :func:`uplift_curve`: ``(Y_t/N_t - Y_c/N_c)(k) * k``.
- :func:`qini_coefficient` / :func:`auuc`: the area between the curve and the random line,
  divided by the same area for the perfect ranking (treated responders first, control
  responders last), so 1 is perfect, 0 is random and below 0 is worse than random.
- :func:`uplift_at_k`: treated minus control mean outcome among the top ``k`` fraction.
- :func:`bootstrap_interval`: a percentile bootstrap (resampling within each arm).

Nothing here reads files or knows about engines or MLflow.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator
from sklearn.model_selection import StratifiedKFold

from churnkit.errors import ChurnkitError

__all__ = [
    "LEARNERS",
    "DRLearner",
    "TLearner",
    "UpliftModel",
    "XLearner",
    "auuc",
    "bootstrap_interval",
    "qini_coefficient",
    "qini_curve",
    "uplift_at_k",
    "uplift_curve",
]

MIN_PER_ARM = 20

# Small, regularised defaults: uplift signals are weak, so shallow trees and many users per leaf.
DEFAULT_PARAMS: dict[str, Any] = {
    "n_estimators": 150,
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_child_samples": 50,
    "subsample": 0.8,
    "subsample_freq": 1,
    "colsample_bytree": 0.8,
    "verbose": -1,
    "n_jobs": 1,
}

Outcome = Literal["binary", "continuous"]


# ------------------------------------------------------------------------------------ input


def _as_1d(values: Any, name: str) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise ChurnkitError(f"uplift: {name} must be one-dimensional, got shape {arr.shape}")
    return arr


def _check_treatment(treatment: Any) -> np.ndarray:
    t = _as_1d(treatment, "treatment")
    try:
        tf = t.astype(float)
    except (TypeError, ValueError):
        raise ChurnkitError("uplift: treatment must be 0/1, got non-numeric values") from None
    bad = ~np.isin(tf, (0.0, 1.0))
    if bad.any():
        raise ChurnkitError(
            f"uplift: treatment must be 0/1, got {bad.sum()} other value(s) such as {t[bad][0]!r}"
        )
    return tf.astype(np.int8)


def _check_arms(t: np.ndarray, min_per_arm: int) -> None:
    n_t = int(t.sum())
    n_c = int(t.size - n_t)
    if n_t == 0 or n_c == 0:
        arm = "treated" if n_t == 0 else "control"
        raise ChurnkitError(f"uplift: only one arm present (no {arm} users)")
    if min(n_t, n_c) < min_per_arm:
        raise ChurnkitError(
            f"uplift: need at least {min_per_arm} users per arm, got {n_t} treated "
            f"and {n_c} control"
        )


def _check_inputs(
    treatment: Any, y: Any, *others: tuple[Any, str], min_per_arm: int = MIN_PER_ARM
) -> tuple[np.ndarray, np.ndarray]:
    t = _check_treatment(treatment)
    yy = _as_1d(y, "y")
    for arr, name in others:
        if len(arr) != t.size:
            raise ChurnkitError(
                f"uplift: lengths differ: {name} has {len(arr)} rows, treatment {t.size}"
            )
    if yy.size != t.size:
        raise ChurnkitError(f"uplift: lengths differ: y has {yy.size} rows, treatment {t.size}")
    try:
        yf = yy.astype(float)
    except (TypeError, ValueError):
        raise ChurnkitError("uplift: y must be numeric") from None
    if not np.isfinite(yf).all():
        raise ChurnkitError(f"uplift: y has {(~np.isfinite(yf)).sum()} missing/infinite value(s)")
    _check_arms(t, min_per_arm)
    return t, yf


def _check_X(X: Any) -> np.ndarray:
    arr = np.asarray(X, dtype=float)
    if arr.ndim == 1:
        arr = arr.reshape(-1, 1)
    if arr.ndim != 2:
        raise ChurnkitError(f"uplift: X must be two-dimensional, got shape {arr.shape}")
    return arr


# ------------------------------------------------------------------------------- learners


class _MetaLearner(BaseEstimator):
    """Shared parameters, validation and model factories."""

    def __init__(
        self,
        base_params: dict | None = None,
        outcome: Outcome = "binary",
        propensity: float | None = None,
        random_state: int = 0,
    ) -> None:
        self.base_params = base_params
        self.outcome = outcome
        self.propensity = propensity
        self.random_state = random_state

    # -- helpers
    def _params(self, offset: int) -> dict[str, Any]:
        params = {**DEFAULT_PARAMS, **(self.base_params or {})}
        params["random_state"] = self.random_state + offset
        return params

    def _classifier(self, offset: int) -> LGBMClassifier:
        return LGBMClassifier(**self._params(offset))

    def _regressor(self, offset: int) -> LGBMRegressor:
        return LGBMRegressor(**self._params(offset))

    def _outcome_model(self, X: np.ndarray, y: np.ndarray, offset: int) -> Any:
        """A model of E[y | x] fitted on (X, y); predict with :meth:`_mean`."""
        if self.outcome == "binary":
            if np.unique(y).size < 2:  # constant outcome in this arm: predict it
                return float(y[0])
            model = self._classifier(offset)
        else:
            model = self._regressor(offset)
        return model.fit(X, y)

    @staticmethod
    def _mean(model: Any, X: np.ndarray) -> np.ndarray:
        if isinstance(model, float):
            return np.full(X.shape[0], model)
        if isinstance(model, LGBMClassifier):
            return model.predict_proba(X)[:, 1]
        return model.predict(X)

    def _validate(
        self, X: Any, treatment: Any, y: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.outcome not in ("binary", "continuous"):
            raise ChurnkitError(
                f"uplift: outcome must be 'binary' or 'continuous', got {self.outcome!r}"
            )
        if self.propensity is not None and not 0.0 < float(self.propensity) < 1.0:
            raise ChurnkitError(f"uplift: propensity must be in (0, 1), got {self.propensity}")
        Xa = _check_X(X)
        t, yf = _check_inputs(treatment, y, (Xa, "X"))
        if self.outcome == "binary" and not np.isin(yf, (0.0, 1.0)).all():
            raise ChurnkitError("uplift: outcome='binary' needs y in {0, 1}; use 'continuous'")
        self.n_features_in_ = Xa.shape[1]
        self.propensity_ = (
            float(self.propensity) if self.propensity is not None else float(t.mean())
        )
        return Xa, t, yf

    def _check_predict_X(self, X: Any) -> np.ndarray:
        if not hasattr(self, "n_features_in_"):
            raise ChurnkitError(f"uplift: {type(self).__name__} is not fitted; call fit first")
        Xa = _check_X(X)
        if Xa.shape[1] != self.n_features_in_:
            raise ChurnkitError(
                f"uplift: X has {Xa.shape[1]} features, the model was fitted on "
                f"{self.n_features_in_}"
            )
        return Xa


class TLearner(_MetaLearner):
    """Two-model learner: one outcome model per arm, effect = treated minus control."""

    def fit(self, X: Any, treatment: Any, y: Any) -> TLearner:
        Xa, t, yf = self._validate(X, treatment, y)
        self.model_control_ = self._outcome_model(Xa[t == 0], yf[t == 0], 0)
        self.model_treated_ = self._outcome_model(Xa[t == 1], yf[t == 1], 1)
        return self

    def predict(self, X: Any) -> np.ndarray:
        Xa = self._check_predict_X(X)
        return self._mean(self.model_treated_, Xa) - self._mean(self.model_control_, Xa)


class XLearner(_MetaLearner):
    """Künzel et al.'s X-learner with the propensity as the blending weight."""

    def fit(self, X: Any, treatment: Any, y: Any) -> XLearner:
        Xa, t, yf = self._validate(X, treatment, y)
        X0, y0, X1, y1 = Xa[t == 0], yf[t == 0], Xa[t == 1], yf[t == 1]
        self.model_control_ = self._outcome_model(X0, y0, 0)
        self.model_treated_ = self._outcome_model(X1, y1, 1)
        d1 = y1 - self._mean(self.model_control_, X1)  # imputed effect of treated users
        d0 = self._mean(self.model_treated_, X0) - y0  # imputed effect of control users
        self.effect_treated_ = self._regressor(2).fit(X1, d1)
        self.effect_control_ = self._regressor(3).fit(X0, d0)
        return self

    def predict(self, X: Any) -> np.ndarray:
        Xa = self._check_predict_X(X)
        e = self.propensity_
        return e * self.effect_control_.predict(Xa) + (1.0 - e) * self.effect_treated_.predict(Xa)


class DRLearner(_MetaLearner):
    """Doubly robust learner: 2-fold cross-fitted AIPW pseudo-outcomes regressed on X."""

    n_folds = 2

    def fit(self, X: Any, treatment: Any, y: Any) -> DRLearner:
        Xa, t, yf = self._validate(X, treatment, y)
        pseudo = np.empty(t.size)
        folds = StratifiedKFold(self.n_folds, shuffle=True, random_state=self.random_state)
        for i, (train, test) in enumerate(folds.split(Xa, t)):
            tr_t = t[train]
            _check_arms(tr_t, 1)
            if self.propensity is not None:
                e = float(self.propensity)
            else:
                e = float(tr_t.mean())
            m0 = self._outcome_model(Xa[train][tr_t == 0], yf[train][tr_t == 0], 10 * i)
            m1 = self._outcome_model(Xa[train][tr_t == 1], yf[train][tr_t == 1], 10 * i + 1)
            mu0, mu1 = self._mean(m0, Xa[test]), self._mean(m1, Xa[test])
            tt, yt = t[test], yf[test]
            pseudo[test] = mu1 - mu0 + tt * (yt - mu1) / e - (1 - tt) * (yt - mu0) / (1.0 - e)
        self.pseudo_outcome_ = pseudo
        self.effect_model_ = self._regressor(100).fit(Xa, pseudo)
        return self

    def predict(self, X: Any) -> np.ndarray:
        Xa = self._check_predict_X(X)
        return self.effect_model_.predict(Xa)


LEARNERS: dict[str, type[_MetaLearner]] = {"t": TLearner, "x": XLearner, "dr": DRLearner}
"""The meta-learners by the names a problem's ``model.learners`` uses."""


class UpliftModel(BaseEstimator):
    """One meta-learner over named feature columns: what an uplift problem registers and
    ``churnkit target`` loads. ``predict`` takes a frame with (at least) the columns it was
    fitted on and returns each row's estimated effect of being contacted.

    Reasons: a meta-learner's effect is a difference (or blend) of models, which has no
    SHAP values of its own; ``explainer_`` is a LightGBM regressor fitted to the effect the
    learner predicts on its training rows (a surrogate, as causalml does), and
    :meth:`contributions` are its TreeSHAP values. ``explainer_r2_`` says how faithful it is.

    Attributes: ``feature_names_in_``, ``learner_`` (the fitted meta-learner),
    ``explainer_``, ``explainer_r2_``.
    """

    def __init__(
        self,
        learner: str = "t",
        outcome: Outcome = "binary",
        base_params: dict | None = None,
        propensity: float | None = None,
        random_state: int = 0,
    ) -> None:
        self.learner = learner
        self.outcome = outcome
        self.base_params = base_params
        self.propensity = propensity
        self.random_state = random_state

    def fit(self, X: pd.DataFrame, treatment: Any, y: Any) -> UpliftModel:
        if self.learner not in LEARNERS:
            raise ChurnkitError(f"uplift: unknown learner {self.learner!r} (known: {', '.join(LEARNERS)})")
        self.feature_names_in_ = [str(c) for c in X.columns]
        self.learner_ = LEARNERS[self.learner](
            base_params=self.base_params, outcome=self.outcome, propensity=self.propensity,
            random_state=self.random_state).fit(X.to_numpy("float64"), treatment, y)
        Xf = X.to_numpy("float64")  # by position: column names may hold any character
        effect = self.learner_.predict(Xf)
        self.explainer_ = LGBMRegressor(**{**DEFAULT_PARAMS, "random_state": self.random_state}).fit(Xf, effect)
        fitted = self.explainer_.predict(Xf)
        spread = float(np.var(effect))
        self.explainer_r2_ = 1.0 - float(np.mean((effect - fitted) ** 2)) / spread if spread > 0 else 1.0
        return self

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Each feature's share of each row's estimated effect (TreeSHAP of the surrogate),
        plus ``bias``: they add up to the surrogate's estimate."""
        if not hasattr(self, "explainer_"):
            raise ChurnkitError("uplift: the model is not fitted; call fit first")
        x = self._columns(X).to_numpy("float64")
        raw = np.asarray(self.explainer_.booster_.predict(x, pred_contrib=True))
        return pd.DataFrame(raw, columns=[*self.feature_names_in_, "bias"], index=X.index)

    def _columns(self, X: pd.DataFrame) -> pd.DataFrame:
        missing = [c for c in self.feature_names_in_ if c not in X.columns]
        if missing:
            raise ChurnkitError(f"uplift: X lacks {len(missing)} feature(s) the model needs, e.g. {missing[0]!r}")
        return X[self.feature_names_in_]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        if not hasattr(self, "learner_"):
            raise ChurnkitError("uplift: the model is not fitted; call fit first")
        return self.learner_.predict(self._columns(X).to_numpy("float64"))


# ------------------------------------------------------------------------------ evaluation


def _sorted_cumulative(
    uplift_scores: Any, treatment: Any, y: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray, int]:
    """Cumulative (N_t, N_c, Y_t, Y_c) at each distinct score threshold, highest first."""
    s = _as_1d(uplift_scores, "uplift_scores").astype(float)
    t, yf = _check_inputs(treatment, y, (s, "uplift_scores"), min_per_arm=1)
    if not np.isfinite(s).all():
        raise ChurnkitError("uplift: uplift_scores has missing/infinite values")
    order = np.argsort(-s, kind="mergesort")
    s, t, yf = s[order], t[order], yf[order]
    n_t = np.cumsum(t)
    n_c = np.cumsum(1 - t)
    y_t = np.cumsum(yf * t)
    y_c = np.cumsum(yf * (1 - t))
    # one point per distinct score (ties are targeted together), plus the origin
    ends = np.r_[np.flatnonzero(np.diff(s) != 0), s.size - 1]
    z = np.zeros(1)
    return (
        np.r_[z, n_t[ends]],
        np.r_[z, n_c[ends]],
        np.r_[z, y_t[ends]],
        np.r_[z, y_c[ends]],
        np.r_[0, ends + 1],
        s.size,
    )


def _frame(n_targeted: np.ndarray, n: int, gain: np.ndarray) -> pd.DataFrame:
    frac = n_targeted / n
    return pd.DataFrame(
        {
            "fraction_targeted": frac,
            "n_targeted": n_targeted.astype(int),
            "incremental_gain": gain,
            "random": frac * gain[-1],
        }
    )


def qini_curve(uplift_scores: Any, treatment: Any, y: Any) -> pd.DataFrame:
    """Radcliffe's Qini curve: ``Q(k) = Y_t(k) - Y_c(k) * N_t(k) / N_c(k)``, top k by score.

    One row per distinct score threshold (plus the origin), columns ``fraction_targeted``,
    ``n_targeted``, ``incremental_gain`` and ``random`` (the straight line to the full
    population's gain). Where no control user is targeted yet the ratio term is 0.
    """
    n_t, n_c, y_t, y_c, k, n = _sorted_cumulative(uplift_scores, treatment, y)
    ratio = np.divide(n_t, n_c, out=np.zeros_like(n_t, dtype=float), where=n_c > 0)
    return _frame(k, n, y_t - y_c * ratio)


def uplift_curve(uplift_scores: Any, treatment: Any, y: Any) -> pd.DataFrame:
    """The uplift curve: ``(Y_t/N_t - Y_c/N_c)(k) * k`` over the top k by score (same columns
    as :func:`qini_curve`; the difference of means counts as 0 until both arms are present)."""
    n_t, n_c, y_t, y_c, k, n = _sorted_cumulative(uplift_scores, treatment, y)
    both = (n_t > 0) & (n_c > 0)
    mt = np.divide(y_t, n_t, out=np.zeros_like(y_t), where=both)
    mc = np.divide(y_c, n_c, out=np.zeros_like(y_c), where=both)
    return _frame(k, n, (mt - mc) * k)


def _area_over_random(curve: pd.DataFrame) -> float:
    x = curve["fraction_targeted"].to_numpy()
    g = curve["incremental_gain"].to_numpy() - curve["random"].to_numpy()
    return float(np.sum((g[1:] + g[:-1]) * np.diff(x)) / 2.0)


def _normalised_area(
    curve_fn: Callable[[Any, Any, Any], pd.DataFrame], scores: Any, treatment: Any, y: Any
) -> float:
    t = _check_treatment(treatment)
    yf = _as_1d(y, "y").astype(float)
    model = _area_over_random(curve_fn(scores, treatment, y))
    if yf.size != t.size:
        raise ChurnkitError(f"uplift: lengths differ: y has {yf.size} rows, treatment {t.size}")
    perfect = _area_over_random(curve_fn(yf * t - yf * (1 - t), t, yf))
    if perfect == 0.0:
        raise ChurnkitError("uplift: the perfect curve has no area over random (constant y?)")
    return model / perfect


def qini_coefficient(uplift_scores: Any, treatment: Any, y: Any) -> float:
    """Area between the Qini curve and the random line, over the same for the perfect ranking."""
    return _normalised_area(qini_curve, uplift_scores, treatment, y)


def auuc(uplift_scores: Any, treatment: Any, y: Any) -> float:
    """Area between the uplift curve and the random line, over the same for the perfect
    ranking."""
    return _normalised_area(uplift_curve, uplift_scores, treatment, y)


def uplift_at_k(uplift_scores: Any, treatment: Any, y: Any, k: float = 0.1) -> float:
    """Treated minus control mean outcome among the top ``k`` fraction of users by score."""
    if not 0.0 < k <= 1.0:
        raise ChurnkitError(f"uplift: k must be in (0, 1], got {k}")
    s = _as_1d(uplift_scores, "uplift_scores").astype(float)
    t, yf = _check_inputs(treatment, y, (s, "uplift_scores"), min_per_arm=1)
    top = np.argsort(-s, kind="mergesort")[: max(1, int(np.ceil(k * s.size)))]
    tt, yt = t[top], yf[top]
    if tt.all() or not tt.any():
        raise ChurnkitError(f"uplift: the top {k:.0%} holds users of one arm only")
    return float(yt[tt == 1].mean() - yt[tt == 0].mean())


def bootstrap_interval(
    metric_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], float],
    scores: Any,
    treatment: Any,
    y: Any,
    n: int = 200,
    seed: int = 0,
    alpha: float = 0.05,
) -> tuple[float, float, float]:
    """``(estimate, low, high)``: ``metric_fn(scores, treatment, y)`` and its percentile
    bootstrap interval at level ``1 - alpha`` (users resampled within each arm)."""
    if n < 1:
        raise ChurnkitError(f"uplift: n must be at least 1, got {n}")
    if not 0.0 < alpha < 1.0:
        raise ChurnkitError(f"uplift: alpha must be in (0, 1), got {alpha}")
    s = _as_1d(scores, "scores").astype(float)
    t, yf = _check_inputs(treatment, y, (s, "scores"), min_per_arm=1)
    estimate = float(metric_fn(s, t, yf))
    rng = np.random.default_rng(seed)
    arms = [np.flatnonzero(t == 0), np.flatnonzero(t == 1)]
    values = np.empty(n)
    for b in range(n):
        idx = np.concatenate([rng.choice(a, size=a.size, replace=True) for a in arms])
        values[b] = metric_fn(s[idx], t[idx], yf[idx])
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return estimate, float(low), float(high)
