"""Lifetime-value regressors for zero-inflated revenue in ``[cutoff, cutoff + H)``.

Two LightGBM formulations of the same expectation ``E[revenue | x]``:

- :class:`HurdleLTV`: ``P(revenue > 0 | x) * E[revenue | revenue > 0, x]``. The spend part
  uses LightGBM's ``gamma`` objective (log link) on the buyers only. Gamma deviance is a
  Bregman loss, so it targets the conditional *mean* whatever the spend distribution is;
  a log-revenue regression would need a smearing factor that is only right when the
  log-scale variance is the same for everyone, which it is not for big and small spenders.
- :class:`TweedieLTV`: one compound Poisson-gamma (``tweedie``) model of revenue directly,
  boosted by default from a Tweedie GLM on log recency, frequency and monetary value
  (:mod:`churnkit.models.linear_base`; on CDNOW it lifts the normalized Gini from 0.706
  to 0.719).

:class:`LTVModel` fits both, keeps the better one on a held-out set, and adds an interval
calibrated on that set (:mod:`churnkit.models.interval`). All follow the scikit-learn conventions (``__init__``
stores parameters, ``fit`` returns self, fitted attributes end in ``_``), so they clone,
pickle and slot into the tuning code.
"""

from __future__ import annotations

import inspect
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import TweedieRegressor
from sklearn.metrics import mean_tweedie_deviance
from sklearn.model_selection import KFold
from sklearn.utils.validation import check_is_fitted

from churnkit.config import canonical_params
from churnkit.errors import ChurnkitError
from churnkit.metrics import normalized_gini, rmse
from churnkit.models import single_row
from churnkit.models.checks import check_features
from churnkit.models.interval import RevenueInterval
from churnkit.models.lgbm import lgbm_params, resolve_threads, sklearn_params
from churnkit.models.linear_base import LinearBase, fit_base

EvalSet = tuple[pd.DataFrame, Any] | None

_NEW_EVAL_API = "eval_X" in inspect.signature(lgb.LGBMModel.fit).parameters
"""LightGBM >= 4.7 takes eval_X / eval_y and deprecates eval_set; older ones only eval_set."""


# --------------------------------------------------------------------------- helpers


def _revenue(y: object, where: str) -> np.ndarray:
    """Revenue labels as float64: finite, non-negative, some positive."""
    try:
        arr = np.asarray(y, dtype="float64").ravel()
    except (TypeError, ValueError):
        raise ChurnkitError(f"{where}: revenue labels must be numbers") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        raise ChurnkitError(f"{where}: {int(bad.sum())} missing or infinite revenue label(s)")
    if (arr < 0).any():
        raise ChurnkitError(f"{where}: {int((arr < 0).sum())} negative revenue label(s); refunds must be netted per user")
    if not (arr > 0).any():
        raise ChurnkitError(f"{where}: all {len(arr)} revenue labels are 0; nothing to learn a value from")
    return arr


def _lgbm_kwargs(est: Any, n_rows: int) -> dict[str, Any]:
    """LightGBM constructor arguments shared by every part model.

    The same parameters as the classifier's (:func:`churnkit.models.lgbm.lgbm_params`:
    deterministic base, tree defaults, tuned values by canonical name, threads by rows),
    spelled for LightGBM's scikit-learn estimators.
    """
    where = f"{type(est).__name__}.lgbm_params"
    own = {"learning_rate": est.learning_rate, "num_leaves": est.num_leaves, "min_data_in_leaf": est.min_child_samples}
    params = lgbm_params(
        "regression", {**own, **canonical_params(est.lgbm_params, where)},
        seed=0 if est.random_state is None else est.random_state, n_jobs=est.n_jobs, n_rows=n_rows, where=where,
    )
    return {"n_estimators": est.n_estimators, **sklearn_params(params)}


def _fit_lgbm(model: lgb.LGBMModel, X: pd.DataFrame, y: np.ndarray, eval_set: tuple | None, rounds: int,
              base: LinearBase | None = None):
    """Fit with early stopping on ``eval_set`` when one is given, from ``base``'s margin."""
    init = None if base is None else {"init_score": base.margin(X)}
    if eval_set is None or len(eval_set[1]) == 0:
        return model.fit(X, y, **(init or {}))
    stop = [lgb.early_stopping(rounds, verbose=False)]
    if init is not None:
        init["eval_init_score"] = [base.margin(eval_set[0])]
    if _NEW_EVAL_API:
        return model.fit(X, y, eval_X=(eval_set[0],), eval_y=(eval_set[1],), callbacks=stop, **(init or {}))
    return model.fit(X, y, eval_set=[eval_set], callbacks=stop, **(init or {}))


def _raw_contrib(model: lgb.LGBMModel, X: pd.DataFrame) -> np.ndarray:
    """Per-feature raw-score (link-scale) contributions; last column is the bias."""
    return np.asarray(model.predict(X, pred_contrib=True), dtype="float64")


def _contrib_frame(values: np.ndarray, names: list[str], index: pd.Index) -> pd.DataFrame:
    return pd.DataFrame(values, columns=[*names, "bias"], index=index)


class _LGBMRegressorBase(RegressorMixin, BaseEstimator):
    """Shared parameters and input checks; subclasses implement ``_fit`` and ``predict``."""

    def _check_fit_input(self, X: pd.DataFrame, y: object, eval_set: EvalSet):
        X = check_features(X, list(map(str, getattr(X, "columns", []))), "fit")
        y = _revenue(y, "fit")
        if len(y) != len(X):
            raise ChurnkitError(f"fit: {len(X)} feature rows but {len(y)} labels")
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        ev = None
        if eval_set is not None:
            Xe = check_features(eval_set[0], list(self.feature_names_in_), "fit eval_set")
            ye = np.asarray(eval_set[1], dtype="float64").ravel()
            if len(ye) != len(Xe) or not np.isfinite(ye).all():
                raise ChurnkitError("fit eval_set: labels must be finite and match the feature rows")
            ev = (Xe, ye)
        return X, y, ev

    def fit(self, X: pd.DataFrame, y: object, *, eval_set: EvalSet = None):
        return self._fit(*self._check_fit_input(X, y, eval_set))

    def _fit_checked(self, X: pd.DataFrame, y: np.ndarray, ev: tuple | None):
        """Fit on features a caller has already checked (:class:`LTVModel` checks once for
        both parts; the frame conversion is the costly part of a check)."""
        self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self.n_features_in_ = X.shape[1]
        return self._fit(X, _revenue(y, "fit"), ev)

    def _check_X(self, X: pd.DataFrame, where: str = "predict") -> pd.DataFrame:
        check_is_fitted(self, "feature_names_in_")
        return check_features(X, list(self.feature_names_in_), where)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = True
        return tags


# --------------------------------------------------------------------------- hurdle


class HurdleLTV(_LGBMRegressorBase):
    """``P(any revenue) * E[revenue | revenue > 0]`` with two LightGBM models.

    The purchase part is a binary classifier on all rows; the spend part a ``gamma``
    regressor on the rows with revenue (see the module docstring for why gamma).
    """

    def __init__(
        self,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        early_stopping_rounds: int = 50,
        random_state: int | None = 0,
        n_jobs: int | None = None,
        lgbm_params: dict[str, Any] | None = None,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.lgbm_params = lgbm_params

    def _fit(self, X: pd.DataFrame, y: np.ndarray, ev: tuple | None) -> HurdleLTV:
        kw = _lgbm_kwargs(self, len(X))
        pos = y > 0
        self.purchase_model_ = lgb.LGBMClassifier(objective="binary", **kw)
        if pos.all():
            # Everyone spends: P(any revenue) = 1; a one-class classifier cannot be fitted.
            self.purchase_model_ = None
        else:
            ev_c = None if ev is None else (ev[0], (ev[1] > 0).astype("float64"))
            _fit_lgbm(self.purchase_model_, X, pos.astype("float64"), ev_c, self.early_stopping_rounds)
        self.spend_model_ = lgb.LGBMRegressor(objective="gamma", **kw)
        ev_s = None
        if ev is not None and (ev[1] > 0).any():
            ev_s = (ev[0][ev[1] > 0], ev[1][ev[1] > 0])
        _fit_lgbm(self.spend_model_, X[pos], y[pos], ev_s, self.early_stopping_rounds)
        return self

    def predict_parts(self, X: pd.DataFrame) -> pd.DataFrame:
        """``p_revenue`` (P(revenue > 0)) and ``spend_if_any`` (E[revenue | revenue > 0])."""
        X = self._check_X(X)
        p = np.ones(len(X)) if self.purchase_model_ is None else self.purchase_model_.predict_proba(X)[:, 1]
        return pd.DataFrame({"p_revenue": p, "spend_if_any": self.spend_model_.predict(X)}, index=X.index)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        parts = self.predict_parts(X)
        return (parts["p_revenue"] * parts["spend_if_any"]).to_numpy()

    def parts_matrix(self, A: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_parts` for a checked float64 matrix (columns ``feature_names_in_``):
        the same booster calls as the scikit-learn wrappers make, without their frames."""
        threads = resolve_threads(self.n_jobs, len(A))
        spend = np.asarray(single_row.predict(self.spend_model_.booster_, A, num_threads=threads), dtype="float64")
        if self.purchase_model_ is None:
            return np.ones(len(A)), spend
        return np.asarray(single_row.predict(self.purchase_model_.booster_, A, num_threads=threads), dtype="float64"), spend

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature contributions to ``log(predicted LTV)``; columns sum to it.

        The spend part is exact TreeSHAP (log link). The purchase part is TreeSHAP on the
        logit, rescaled so it sums to the change in ``log P(revenue > 0)`` from the bias
        (a linearisation of log-sigmoid: signs and ranking are kept, magnitudes approximate).
        """
        X = self._check_X(X, "contributions")
        spend = _raw_contrib(self.spend_model_, X)
        if self.purchase_model_ is None:
            total = spend
        else:
            logit = _raw_contrib(self.purchase_model_, X)
            f = logit.sum(axis=1)
            b = logit[:, -1]
            logsig = -np.logaddexp(0.0, -f)
            logsig_b = -np.logaddexp(0.0, -b)
            delta = f - b
            with np.errstate(divide="ignore", invalid="ignore"):
                scale = np.where(np.abs(delta) > 1e-12, (logsig - logsig_b) / delta, np.exp(-np.logaddexp(0.0, b)))
            purchase = logit.copy()
            purchase[:, :-1] *= scale[:, None]
            purchase[:, -1] = logsig_b
            total = spend + purchase
        return _contrib_frame(total, list(self.feature_names_in_), X.index)

    def feature_importance(self) -> pd.Series:
        """Total gain of both parts per feature (a split on either part counts)."""
        check_is_fitted(self, "spend_model_")
        gain = self.spend_model_.booster_.feature_importance("gain")
        if self.purchase_model_ is not None:
            gain = gain + self.purchase_model_.booster_.feature_importance("gain")
        return pd.Series(gain, index=self.feature_names_in_, name="gain").sort_values(ascending=False)


# --------------------------------------------------------------------------- tweedie


class TweedieLTV(_LGBMRegressorBase):
    """One LightGBM model with the Tweedie (compound Poisson-gamma) loss, log link.

    ``variance_power`` in (1, 2): near 1 behaves like Poisson (counts of purchases), near 2
    like gamma (spend); 1.5 is the usual start and a tuning parameter. ``base``:
    ``linear_rfm`` boosts from a Tweedie GLM on the RFM columns the features hold (same
    power), ``none`` from a constant.
    """

    def __init__(
        self,
        variance_power: float = 1.5,
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        early_stopping_rounds: int = 50,
        random_state: int | None = 0,
        n_jobs: int | None = None,
        lgbm_params: dict[str, Any] | None = None,
        base: str = "linear_rfm",
    ):
        self.base = base
        self.variance_power = variance_power
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.lgbm_params = lgbm_params

    def _fit(self, X: pd.DataFrame, y: np.ndarray, ev: tuple | None) -> TweedieLTV:
        if not 1.0 < float(self.variance_power) < 2.0:
            raise ChurnkitError(f"fit: tweedie variance_power must be in (1, 2), got {self.variance_power}")
        if self.base not in ("linear_rfm", "none"):
            raise ChurnkitError(f"fit: base must be linear_rfm or none, got {self.base!r}")
        self.model_ = lgb.LGBMRegressor(
            objective="tweedie", tweedie_variance_power=float(self.variance_power), **_lgbm_kwargs(self, len(X))
        )
        columns = LinearBase.columns_in(list(X.columns)) if self.base == "linear_rfm" else []
        self.base_ = fit_base("log", X, y, columns, ev, float(self.variance_power))
        _fit_lgbm(self.model_, X, y, ev, self.early_stopping_rounds, self.base_)
        return self

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        X = self._check_X(X)
        base = getattr(self, "base_", None)  # None too for a model pickled before bases
        if base is None:
            return np.asarray(self.model_.predict(X), dtype="float64")
        return np.exp(np.asarray(self.model_.predict(X, raw_score=True), dtype="float64") + base.margin(X))

    def predict_matrix(self, A: np.ndarray) -> np.ndarray:
        """:meth:`predict` for a checked float64 matrix (columns ``feature_names_in_``)."""
        threads = resolve_threads(self.n_jobs, len(A))
        booster = self.model_.booster_
        base = getattr(self, "base_", None)
        if base is None:
            return np.asarray(single_row.predict(booster, A, num_threads=threads), dtype="float64")
        raw = np.asarray(single_row.predict(booster, A, raw_score=True, num_threads=threads), dtype="float64")
        return np.exp(raw + base.margin_matrix(A, self.feature_names_in_))

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Exact contributions to ``log(predicted LTV)`` (TreeSHAP plus the linear base's
        terms); columns sum to it."""
        X = self._check_X(X, "contributions")
        values = _raw_contrib(self.model_, X)
        if getattr(self, "base_", None) is not None:
            values = values + self.base_.contributions(X, list(self.feature_names_in_))
        return _contrib_frame(values, list(self.feature_names_in_), X.index)

    def feature_importance(self) -> pd.Series:
        check_is_fitted(self, "model_")
        gain = self.model_.booster_.feature_importance("gain")
        return pd.Series(gain, index=self.feature_names_in_, name="gain").sort_values(ascending=False)


# --------------------------------------------------------------------------- level


class LevelMap:
    """``log E[revenue] = a + b log(prediction)``, fitted on held-out rows (Tweedie deviance).

    The revenue analogue of a classifier's Platt scaling: a model learnt on earlier cutoffs
    gets the ranking right and the level wrong (on CDNOW's last training cutoff the plain
    model predicted 13% too little and compressed the top, the boosted-from-linear one 24%
    too much); ``b > 0`` keeps the order, so ranking metrics do not move. :meth:`fit`
    keeps the map only if its 5-fold cross-validated deviance on those rows beats the raw
    predictions' (``kept``; otherwise ``a = 0, b = 1``).
    """

    def __init__(self, variance_power: float = 1.5) -> None:
        self.variance_power = variance_power

    def _glm(self, pred: np.ndarray, y: np.ndarray) -> tuple[float, float]:
        g = TweedieRegressor(power=self.variance_power, link="log", alpha=0.0, max_iter=200)
        g.fit(np.log(pred)[:, None], y)
        return float(g.intercept_), float(np.clip(g.coef_[0], 0.25, 4.0))

    def fit(self, pred: np.ndarray, y: np.ndarray, seed: int = 0) -> LevelMap:
        pred = np.maximum(np.asarray(pred, dtype="float64"), 1e-9)
        y = np.asarray(y, dtype="float64")
        self.a_, self.b_, self.kept_ = 0.0, 1.0, False
        self.deviance_ = {}
        if len(y) < 50 or not (y > 0).any() or np.ptp(np.log(pred)) < 1e-9:
            return self
        oof = np.empty_like(y)
        for tr, te in KFold(5, shuffle=True, random_state=seed).split(pred):
            a, b = self._glm(pred[tr], y[tr])
            oof[te] = np.exp(a + b * np.log(pred[te]))
        dev = lambda p: float(mean_tweedie_deviance(y, p, power=self.variance_power))
        self.deviance_ = {"raw": dev(pred), "map": dev(oof)}
        if self.deviance_["map"] < self.deviance_["raw"]:
            self.a_, self.b_ = self._glm(pred, y)
            self.kept_ = True
        return self

    def predict(self, pred: np.ndarray) -> np.ndarray:
        if not self.kept_:
            return np.asarray(pred, dtype="float64")
        return np.exp(self.a_ + self.b_ * np.log(np.maximum(np.asarray(pred, dtype="float64"), 1e-9)))

    def describe(self) -> dict[str, Any]:
        return {"kept": self.kept_, "a": self.a_, "b": self.b_, **{f"deviance_{k}": v for k, v in self.deviance_.items()}}


# --------------------------------------------------------------------------- chooser


class LTVModel(_LGBMRegressorBase):
    """Hurdle and Tweedie fitted side by side; the better on held-out rows is kept.

    Selection is by normalized Gini on ``eval_set`` (ranking is what lists use); a tie
    within ``tie_tol`` goes to the lower RMSE. Without ``eval_set`` a seeded random
    ``holdout`` share of the rows is held out for early stopping and selection (pass a
    later cutoff as ``eval_set`` when you have one: random rows share users across time).

    ``predict`` is the chosen model's conditional mean, its level set on the held-out rows
(:class:`LevelMap`, kept only where it cross-validates better). ``predict_interval`` is a range for
    the realised revenue (:class:`~churnkit.models.interval.RevenueInterval`: the hurdle
    parts' zero-or-gamma distribution, its levels calibrated on the held-out rows so that the
    nominal share of realised values falls inside), not a confidence interval for the mean,
    so on zero-inflated revenue the mean can lie above ``ltv_high`` (a user with a 5% chance
    of a large order: the 90% quantile is 0, the mean is not).
    """

    def __init__(
        self,
        variance_power: float = 1.5,
        quantiles: tuple[float, float] = (0.1, 0.9),
        n_estimators: int = 500,
        learning_rate: float = 0.05,
        num_leaves: int = 31,
        min_child_samples: int = 20,
        early_stopping_rounds: int = 50,
        holdout: float = 0.2,
        tie_tol: float = 1e-3,
        random_state: int | None = 0,
        n_jobs: int | None = None,
        lgbm_params: dict[str, Any] | None = None,
        base: str = "linear_rfm",
    ):
        self.base = base
        self.variance_power = variance_power
        self.quantiles = quantiles
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.early_stopping_rounds = early_stopping_rounds
        self.holdout = holdout
        self.tie_tol = tie_tol
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.lgbm_params = lgbm_params

    def _part_params(self) -> dict[str, Any]:
        """This model's values of the parameters the hurdle part takes (the Tweedie part
        takes the same plus ``variance_power``)."""
        return {name: getattr(self, name) for name in HurdleLTV._get_param_names()}

    def fit(self, X: pd.DataFrame, y: object, *, eval_set: EvalSet = None) -> LTVModel:
        lo, hi = (float(q) for q in self.quantiles)
        if not 0.0 < lo < hi < 1.0:
            raise ChurnkitError(f"fit: quantiles must satisfy 0 < low < high < 1, got {self.quantiles}")
        X, y, ev = self._check_fit_input(X, y, eval_set)
        if ev is None:
            X, y, ev = self._split(X, y)
        Xe, ye = ev
        self.candidates_ = {
            "hurdle": HurdleLTV(**self._part_params())._fit_checked(X, y, ev),
            "tweedie": TweedieLTV(self.variance_power, **self._part_params(), base=self.base)._fit_checked(X, y, ev),
        }
        self.scores_ = {}
        for name, model in self.candidates_.items():
            pred = model.predict(Xe)
            self.scores_[name] = {
                "gini_norm": normalized_gini(ye, pred),
                "rmse": rmse(ye, pred),
            }
        self.chosen_ = self._choose(self.scores_)
        self.level_ = LevelMap(self.variance_power).fit(self.model_.predict(Xe), ye, seed=self.random_state or 0)
        parts = self.candidates_["hurdle"].predict_parts(Xe)
        self.interval_ = RevenueInterval((lo, hi)).fit(parts["p_revenue"], parts["spend_if_any"], ye)
        return self

    def _split(self, X: pd.DataFrame, y: np.ndarray):
        if not 0.0 < self.holdout < 1.0:
            raise ChurnkitError(f"fit: holdout must be in (0, 1) when no eval_set is given, got {self.holdout}")
        rng = np.random.default_rng(self.random_state)
        held = rng.random(len(y)) < self.holdout
        if held.all() or not held.any() or not (y[~held] > 0).any():
            raise ChurnkitError(f"fit: {len(y)} rows are too few to hold out {self.holdout:.0%} for model choice")
        return X[~held], y[~held], (X[held], y[held])

    def _choose(self, scores: dict[str, dict[str, float]]) -> str:
        """Higher normalized Gini wins; within ``tie_tol`` (or both NaN) the lower RMSE."""
        h, t = scores["hurdle"], scores["tweedie"]
        gh, gt = (np.nan_to_num(s["gini_norm"], nan=-np.inf) for s in (h, t))
        if abs(gh - gt) > self.tie_tol and np.isfinite(max(gh, gt)):
            return "hurdle" if gh > gt else "tweedie"
        return "hurdle" if h["rmse"] <= t["rmse"] else "tweedie"

    @property
    def model_(self) -> HurdleLTV | TweedieLTV:
        check_is_fitted(self, "chosen_")
        return self.candidates_[self.chosen_]

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        pred = self.model_.predict(X)  # the chosen part checks X against the same features
        level = getattr(self, "level_", None)  # None for a model pickled before level maps
        return pred if level is None else level.predict(pred)

    def predict_interval(
        self, X: pd.DataFrame, low: float = 0.1, high: float = 0.9
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(ltv_low, ltv_high)``: the calibrated interval for the nominal ``low``/``high``
        levels, which must be the ``quantiles`` given at fit time. Both are at least 0 and
        ordered; ``ltv_low`` is 0 where a zero is likely enough."""
        X = self._check_X(X, "predict_interval")
        fitted = tuple(float(q) for q in (self.interval_.quantiles if hasattr(self, "interval_") else self.quantiles))
        missing = [q for q in (float(low), float(high)) if q not in fitted]
        if missing:
            raise ChurnkitError(
                f"predict_interval: quantile {missing[0]} was not fitted; "
                f"fitted: {sorted(fitted)} (set LTVModel(quantiles=...))"
            )
        if not hasattr(self, "interval_"):  # a model pickled before calibrated intervals
            a, b = (np.clip(self.quantile_models_[q].predict(X), 0.0, None) for q in fitted)
            return np.minimum(a, b), np.maximum(a, b)
        parts = self.candidates_["hurdle"].predict_parts(X)
        return self.interval_.predict(parts["p_revenue"], parts["spend_if_any"])

    def outputs_matrix(self, A: np.ndarray) -> dict[str, np.ndarray] | None:
        """``score``, ``low`` and ``high`` (:meth:`predict` and :meth:`predict_interval` at the
        fitted quantiles) for a checked float64 matrix whose columns are ``feature_names_in_``:
        the hurdle parts are predicted once for both, without frames. None for a model the
        frame path must answer (pickled before calibrated intervals, or quantiles it does not
        have: that path says why)."""
        check_is_fitted(self, "chosen_")
        interval = getattr(self, "interval_", None)
        if interval is None or any(float(q) not in tuple(map(float, interval.quantiles)) for q in self.quantiles):
            return None
        hurdle = self.candidates_["hurdle"]
        p, m = hurdle.parts_matrix(A)
        pred = p * m if self.chosen_ == "hurdle" else self.model_.predict_matrix(A)
        level = getattr(self, "level_", None)
        score = pred if level is None else level.predict(pred)
        low, high = interval.predict(p, m)
        return {"score": np.asarray(score, dtype="float64"), "low": low, "high": high}

    @property
    def interval_calibration_(self) -> dict[str, float]:
        """How the interval was calibrated: rows, nominal coverage, coverage at the nominal
        and at the calibrated levels on the held-out rows, the levels and the gamma shape."""
        check_is_fitted(self, "interval_")
        return dict(self.interval_.calibration_)

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """The chosen model's contributions to ``log(predicted LTV)`` (+ ``bias``), through
        the level map (``b`` times each, ``a`` added to the bias): they sum to it."""
        c = self.model_.contributions(X)
        level = getattr(self, "level_", None)
        if level is None or not level.kept_:
            return c
        c = c * level.b_
        c["bias"] = c["bias"] + level.a_
        return c

    def feature_importance(self) -> pd.Series:
        """Gain importance of the chosen model."""
        return self.model_.feature_importance()
