"""Churn and purchase propensity: a LightGBM booster plus a probability calibrator.

Scores are used as probabilities (value at risk = churn probability x LTV; "contact the
users above 30 %"), so they must be calibrated, not only well ranked. The booster is
early-stopped on a later-in-time evaluation set and a calibrator (isotonic, Platt or
none) is fitted on that same set's margins; ``calibration="auto"`` picks the one with the
lowest cross-validated log loss on it, so the more flexible isotonic map wins only when
the set is large enough to support it, and keeps the raw probabilities unless the map also
lowers their cross-validated Brier score without raising their ECE
(``calibration_scores_`` records each candidate's figures).

Without an evaluation set, ``fit`` holds out a stratified *random* ``holdout`` fraction of
the rows for early stopping and calibration. That split ignores time (a user's rows from
other cutoffs can fall on both sides), so it is a convenience: the backtest passes a later
cutoff as ``eval_set``. ``holdout=0`` trains on every row for ``n_estimators`` rounds
without calibration.

With ``base="linear_rfm"`` (the default) the booster starts from the margin of a logistic
regression on log recency, frequency and monetary value
(:class:`~churnkit.models.linear_base.LinearBase`, fitted on the same rows) and learns
corrections to it: on CDNOW it is what lifts the model from level with that logistic to
above it (bench/RESULTS.md). The margin, the calibration and the contributions are of the
sum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal, get_args

import lightgbm as lgb
import numpy as np
import pandas as pd
from scipy.optimize import minimize
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.model_selection import StratifiedKFold, train_test_split

from churnkit.config import ClassifierSettings, canonical_params
from churnkit.config.estimators import Base, Calibration
from churnkit.errors import ChurnkitError
from churnkit.metrics import both_classes, brier, expected_calibration_error, log_loss
from churnkit.models import single_row
from churnkit.models.checks import check_binary_target, check_features
from churnkit.models.lgbm import lgbm_params, resolve_threads
from churnkit.models.linear_base import LinearBase, fit_base

CALIBRATIONS = get_args(Calibration)
BASES = get_args(Base)
BINARY_OBJECTIVES = ("binary", "cross_entropy")
_EPS = 1e-6
_JSON_CHARS = set('[]{}":,')


# --------------------------------------------------------------------------- calibrators


class IdentityCalibrator:
    """The booster's own probability: sigmoid of the margin."""

    kind = "none"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> IdentityCalibrator:
        return self

    def predict(self, margin: np.ndarray) -> np.ndarray:
        return expit(margin)


class SigmoidCalibrator:
    """Platt scaling: ``sigmoid(a * margin + b)`` fitted by maximum likelihood."""

    kind = "sigmoid"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> SigmoidCalibrator:
        m = np.asarray(margin, dtype="float64")
        y = np.asarray(y, dtype="float64")

        def loss(ab: np.ndarray) -> tuple[float, np.ndarray]:
            z = ab[0] * m + ab[1]
            # log(1 + e^z) - y z, numerically stable; gradient (p - y) [m, 1]
            value = float(np.sum(np.logaddexp(0.0, z) - y * z))
            r = expit(z) - y
            return value, np.array([np.sum(r * m), np.sum(r)])

        res = minimize(loss, x0=np.array([1.0, 0.0]), jac=True, method="L-BFGS-B")
        self.a_, self.b_ = float(res.x[0]), float(res.x[1])
        return self

    def predict(self, margin: np.ndarray) -> np.ndarray:
        return expit(self.a_ * np.asarray(margin, dtype="float64") + self.b_)


class IsotonicCalibrator:
    """Monotone step map from margin to probability, clipped away from exact 0 and 1."""

    kind = "isotonic"

    def fit(self, margin: np.ndarray, y: np.ndarray) -> IsotonicCalibrator:
        self.iso_ = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip")
        self.iso_.fit(np.asarray(margin, dtype="float64"), np.asarray(y, dtype="float64"))
        return self

    def predict(self, margin: np.ndarray) -> np.ndarray:
        return np.clip(self.iso_.predict(np.asarray(margin, dtype="float64")), _EPS, 1 - _EPS)


CALIBRATORS = {"none": IdentityCalibrator, "sigmoid": SigmoidCalibrator, "isotonic": IsotonicCalibrator}


def choose_calibration(
    margin: np.ndarray, y: np.ndarray, *, n_splits: int = 5, seed: int = 0,
    min_gain: float = 0.005,
) -> tuple[str, dict[str, dict[str, float]]]:
    """The calibrator with the lowest out-of-fold log loss on ``(margin, y)``, and each
    candidate's out-of-fold log loss, Brier score and ECE.

    In-sample, isotonic always wins; cross-validation makes it pay for its flexibility.
    A more flexible map (none -> sigmoid -> isotonic) must also beat the simpler choice by
    ``min_gain`` (relative): on the demo churn set LightGBM's own probabilities were already
    calibrated (ECE 0.017) and a 0.1 % CV gain for Platt scaling did not carry over to the
    test. A calibrator is never worse than the plain model: it is kept only if its
    out-of-fold Brier score is lower and its ECE no higher than the uncalibrated ones. With
    fewer than 2 rows of the rarer class the raw probabilities are kept.
    """
    y = np.asarray(y, dtype="float64")
    minority = int(min(y.sum(), len(y) - y.sum()))
    if minority < 2:
        return "none", {}
    k = min(n_splits, minority)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    scores: dict[str, dict[str, float]] = {}
    for kind in ("none", "sigmoid", "isotonic"):
        oof = np.empty_like(y)
        for tr, te in cv.split(margin, y):
            oof[te] = CALIBRATORS[kind]().fit(margin[tr], y[tr]).predict(margin[te])
        scores[kind] = {"log_loss": log_loss(y, oof, eps=_EPS), "brier": brier(y, oof),
                        "ece": expected_calibration_error(y, oof)}
    best = "none"
    plain = scores["none"]
    for kind in ("sigmoid", "isotonic"):
        s = scores[kind]
        if (s["log_loss"] < scores[best]["log_loss"] * (1 - min_gain)
                and s["brier"] < plain["brier"] and s["ece"] <= plain["ece"]):
            best = kind
    return best, scores


# --------------------------------------------------------------------------- estimator


EvalSet = tuple[pd.DataFrame, Any] | Sequence[tuple[pd.DataFrame, Any]]


class PropensityClassifier(ClassifierMixin, BaseEstimator):
    """Calibrated LightGBM classifier for 0/1 outcomes (churn, purchase).

    Parameters
    ----------
    params : LightGBM parameters (any alias) merged over :data:`DEFAULT_TREE_PARAMS`.
    n_estimators : most boosting rounds.
    early_stopping_rounds : patience on the evaluation set's first metric; 0 disables.
    calibration : ``auto`` | ``isotonic`` | ``sigmoid`` | ``none``.
    holdout : random fraction held out for stopping and calibration when ``fit`` gets no
        ``eval_set`` (see the module docstring); 0 disables both in that case.
    base : ``linear_rfm`` boosts from a logistic regression on the RFM columns the features
        hold (see the module docstring), ``none`` from a constant.
    random_state : LightGBM ``seed``.
    n_jobs : LightGBM threads; None picks by rows (one per 100k, see
        :func:`~churnkit.models.lgbm.resolve_threads`), -1 uses all cores.
    feature_manifest : optional list of ``{name, description, unit, ...}`` dicts; when given,
        its names (in order) are the model's features and ``fit`` checks ``X`` against them.
    """

    def __init__(
        self,
        params: Mapping[str, Any] | None = None,
        n_estimators: int = 2000,
        early_stopping_rounds: int = 50,
        calibration: Calibration = "auto",
        holdout: float = 0.2,
        base: Base = "linear_rfm",
        random_state: int = 0,
        n_jobs: int | None = None,
        feature_manifest: Sequence[Mapping[str, Any]] | None = None,
    ) -> None:
        self.params = params
        self.n_estimators = n_estimators
        self.early_stopping_rounds = early_stopping_rounds
        self.calibration = calibration
        self.holdout = holdout
        self.base = base
        self.random_state = random_state
        self.n_jobs = n_jobs
        self.feature_manifest = feature_manifest

    @classmethod
    def from_settings(
        cls,
        settings: ClassifierSettings,
        *,
        params: Mapping[str, Any] | None = None,
        random_state: int = 0,
        n_jobs: int | None = None,
        feature_manifest: Sequence[Mapping[str, Any]] | None = None,
    ) -> PropensityClassifier:
        """An estimator from a problem's settings; ``params`` (e.g. tuned) override theirs.
        Settings left unset keep the estimator's defaults."""
        merged = {**canonical_params(settings.params), **canonical_params(params)}
        given = settings.model_dump(exclude={"params"}, exclude_none=True)
        return cls(params=merged, **given, random_state=random_state, n_jobs=n_jobs,
                   feature_manifest=feature_manifest)

    # ------------------------------------------------------------------ fit

    def _feature_names(self, X: pd.DataFrame) -> list[str]:
        if self.feature_manifest is not None:
            try:
                return [str(f["name"]) for f in self.feature_manifest]
            except (KeyError, TypeError):
                raise ChurnkitError("feature_manifest: every entry needs a 'name'") from None
        if not isinstance(X, pd.DataFrame):
            raise ChurnkitError(
                f"fit: expected a DataFrame with named feature columns, got {type(X).__name__}"
            )
        return [str(c) for c in X.columns]

    def _params(self, n_rows: int) -> dict[str, Any]:
        if self.calibration not in CALIBRATIONS:
            raise ChurnkitError(
                f"calibration must be one of {', '.join(CALIBRATIONS)} (got {self.calibration!r})"
            )
        if not 0.0 <= float(self.holdout) < 1.0:
            raise ChurnkitError(f"holdout must be in [0, 1) (got {self.holdout})")
        if self.base not in BASES:
            raise ChurnkitError(f"base must be one of {', '.join(BASES)} (got {self.base!r})")
        params = lgbm_params(
            "binary", self.params, seed=self.random_state, n_jobs=self.n_jobs, n_rows=n_rows,
            where="PropensityClassifier.params",
        )
        if params["objective"] not in BINARY_OBJECTIVES:
            raise ChurnkitError(
                f"PropensityClassifier.params: objective must be binary, got {params['objective']!r}"
            )
        return params

    def fit(
        self, X: pd.DataFrame, y: Any, *, eval_set: EvalSet | None = None
    ) -> PropensityClassifier:
        """Boost on ``(X, y)``, early-stop and calibrate on ``eval_set`` (or a holdout).

        ``eval_set`` is ``(X_valid, y_valid)`` or a one-element list of such a pair (the
        LightGBM/XGBoost convention).
        """
        names = self._feature_names(X)
        Xf = check_features(X, names, "fit")
        params = self._params(len(Xf))
        yf = check_binary_target(y, "fit: label")
        if len(yf) != len(Xf):
            raise ChurnkitError(f"fit: {len(Xf)} feature rows but {len(yf)} labels")
        ev = _eval_pair(eval_set)
        if ev is not None:
            Xv = check_features(ev[0], names, "fit: eval_set")
            yv = _eval_target(ev[1], len(Xv))
        elif self.holdout > 0:
            minority = int(min(yf.sum(), len(yf) - yf.sum()))
            if minority * self.holdout < 1 or minority * (1 - self.holdout) < 1:
                raise ChurnkitError(
                    f"fit: only {minority} row(s) of the rarer outcome; too few to hold out "
                    f"{self.holdout:.0%} for calibration (pass eval_set or holdout=0)"
                )
            Xf, Xv, yf, yv = train_test_split(
                Xf, yf, test_size=self.holdout, stratify=yf, random_state=self.random_state
            )
        else:
            Xv = yv = None

        odd = [n for n in names if set(n) & _JSON_CHARS]
        if odd:
            raise ChurnkitError(
                f"fit: LightGBM cannot store feature names with any of {''.join(sorted(_JSON_CHARS))}:"
                f" {', '.join(repr(n) for n in odd[:3])}"
            )
        columns = LinearBase.columns_in(names) if self.base == "linear_rfm" else []
        later = (Xv, yv) if Xv is not None and both_classes(yv) else None
        self.base_ = fit_base("logit", Xf, yf, columns, later) if both_classes(yf) else None
        train = lgb.Dataset(Xf.to_numpy(), label=yf, feature_name=names, free_raw_data=True,
                            init_score=self._base_margin(Xf))
        valid_sets, callbacks = [], []
        if Xv is not None:
            valid_sets = [lgb.Dataset(Xv.to_numpy(), label=yv, reference=train, init_score=self._base_margin(Xv))]
            if self.early_stopping_rounds:
                callbacks.append(
                    lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False)
                )
        booster = lgb.train(
            params, train, num_boost_round=int(self.n_estimators), valid_sets=valid_sets,
            valid_names=["valid"] * len(valid_sets), callbacks=callbacks,
        )
        best = booster.best_iteration if booster.best_iteration > 0 else booster.current_iteration()
        # keep only the trees that are used: smaller pickles, no num_iteration to carry around
        self.booster_ = lgb.Booster(model_str=booster.model_to_string(num_iteration=best))
        self.best_iteration_ = int(best)
        self.params_ = params
        self.feature_names_in_ = np.asarray(names, dtype=object)
        self.n_features_in_ = len(names)
        self.classes_ = np.array([0, 1])
        self._calibrate(Xv, yv)
        return self

    def _calibrate(self, Xv: pd.DataFrame | None, yv: np.ndarray | None) -> None:
        wanted = self.calibration
        self.calibration_scores_: dict[str, dict[str, float]] = {}
        margin = None
        if wanted == "none" or Xv is None:
            kind = "none"
        else:
            margin = self._margin(Xv)
            two_classes = yv is not None and both_classes(yv)
            if wanted == "auto":
                kind, self.calibration_scores_ = (
                    choose_calibration(margin, yv, seed=self.random_state) if two_classes else ("none", {})
                )
            elif not two_classes:
                raise ChurnkitError(
                    f"fit: cannot calibrate ({wanted}) on an evaluation set with one outcome only"
                )
            else:
                kind = wanted
        calibrator = CALIBRATORS[kind]()
        if kind != "none":
            calibrator.fit(margin, yv)
        self.calibrator_ = calibrator
        self.calibration_ = kind

    # ------------------------------------------------------------------ predict

    def _check_fitted(self) -> None:
        if not hasattr(self, "booster_"):
            raise ChurnkitError("PropensityClassifier is not fitted yet; call fit first")

    def _base_margin(self, Xf: pd.DataFrame) -> np.ndarray | None:
        base = getattr(self, "base_", None)  # None too for a model pickled before bases
        return None if base is None else base.margin(Xf)

    def _margin(self, Xf: pd.DataFrame) -> np.ndarray:
        threads = resolve_threads(self.n_jobs, len(Xf))
        raw = self.booster_.predict(Xf.to_numpy(), raw_score=True, num_threads=threads)
        base = self._base_margin(Xf)
        return raw if base is None else raw + base

    def _checked(self, X: pd.DataFrame, where: str) -> pd.DataFrame:
        self._check_fitted()
        return check_features(X, list(self.feature_names_in_), where)

    def predict_raw(self, X: pd.DataFrame) -> np.ndarray:
        """Uncalibrated log-odds margin of the booster."""
        return self._margin(self._checked(X, "predict_raw"))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Calibrated ``[P(0), P(1)]`` per row, shape (n, 2)."""
        margin = self._margin(self._checked(X, "predict_proba"))
        p1 = self.calibrator_.predict(margin)
        return np.column_stack([1.0 - p1, p1])

    def proba_matrix(self, A: np.ndarray) -> np.ndarray:
        """Calibrated ``P(1)`` for a float64 matrix whose columns are ``feature_names_in_`` in
        order: :meth:`predict_proba`'s booster call, base and calibration without its checks
        and frames (the caller has checked the rows once; see :func:`~churnkit.models.outputs.matrix_outputs`)."""
        self._check_fitted()
        threads = resolve_threads(self.n_jobs, len(A))
        raw = single_row.predict(self.booster_, A, raw_score=True, num_threads=threads)
        base = getattr(self, "base_", None)
        margin = raw if base is None else raw + base.margin_matrix(A, self.feature_names_in_)
        return self.calibrator_.predict(margin)

    def outputs_matrix(self, A: np.ndarray) -> dict[str, np.ndarray]:
        """The model's outputs by part (``score``) for a checked float64 matrix."""
        return {"score": np.asarray(self.proba_matrix(A), dtype="float64")}

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """1 where the calibrated probability is at least 0.5."""
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]

    def contributions(self, X: pd.DataFrame) -> pd.DataFrame:
        """Per-feature SHAP contributions to the raw margin (TreeSHAP), plus ``bias``; the
        linear base's exact terms are added to its columns' (and its intercept to ``bias``).

        Rows sum to :meth:`predict_raw`; they explain the ranking, not the calibrated map.
        """
        Xf = self._checked(X, "contributions")
        threads = resolve_threads(self.n_jobs, len(Xf))
        values = self.booster_.predict(Xf.to_numpy(), pred_contrib=True, num_threads=threads)
        if getattr(self, "base_", None) is not None:
            values = values + self.base_.contributions(Xf, list(self.feature_names_in_))
        return pd.DataFrame(values, columns=[*self.feature_names_in_, "bias"], index=X.index)

    def feature_importance(self, kind: Literal["gain", "split"] = "gain") -> pd.Series:
        """LightGBM importance per feature, largest first."""
        self._check_fitted()
        values = self.booster_.feature_importance(importance_type=kind)
        return pd.Series(values, index=self.feature_names_in_, name=kind).sort_values(ascending=False)


SKOPS_TRUSTED_TYPES: list[str] = [
    f"{c.__module__}.{c.__qualname__}"
    for c in (PropensityClassifier, *CALIBRATORS.values(), lgb.Booster, IsotonicRegression, LinearBase)
]
"""Types to trust when saving/loading with skops (mlflow.sklearn's default format):
``mlflow.sklearn.log_model(..., skops_trusted_types=SKOPS_TRUSTED_TYPES)``."""


def _eval_pair(eval_set: EvalSet | None) -> tuple[pd.DataFrame, Any] | None:
    if eval_set is None:
        return None
    if isinstance(eval_set, list):
        if len(eval_set) != 1:
            raise ChurnkitError(f"fit: eval_set takes one (X, y) pair, got {len(eval_set)}")
        eval_set = eval_set[0]
    if not isinstance(eval_set, tuple) or len(eval_set) != 2:
        raise ChurnkitError("fit: eval_set must be an (X, y) pair")
    return eval_set


def _eval_target(y: Any, n: int) -> np.ndarray:
    arr = np.asarray(y, dtype="float64")
    if arr.shape != (n,):
        raise ChurnkitError(f"fit: eval_set has {n} feature rows but labels of shape {arr.shape}")
    if np.isnan(arr).any() or not np.isin(arr, [0.0, 1.0]).all():
        raise ChurnkitError("fit: eval_set labels must be 0 or 1")
    return arr
