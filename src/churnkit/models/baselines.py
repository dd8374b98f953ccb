"""Baselines scored on the same rows as the models, so a model's lift is measured.

- :class:`RecencyRFMBaseline`: the transparent heuristic an analyst would use for churn or
  purchase: rank-combine recency, frequency and monetary value; isotonic regression maps
  the combined rank to a probability on the training rows.
- :class:`LastPeriodRevenue`: revenue in the last comparable window, scaled to the horizon.
- :class:`BGNBDBaseline` and :func:`bgnbd_features`: the BG/NBD + Gamma-Gamma customer-base
  model from pymc-marketing (optional extra ``churnkit[clv]``), fitted per cutoff on the
  customers' (x, t_x, T, zbar) summary at that cutoff: unsupervised, so no label leaks.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, RegressorMixin
from sklearn.isotonic import IsotonicRegression
from sklearn.utils.validation import check_is_fitted

from churnkit.errors import ChurnkitError
from churnkit.features.families import rfm, windows
from churnkit.features.spec import FeatureSpec
from churnkit.models.checks import check_binary_target, check_features

# --------------------------------------------------------------------------- RFM


def _ecdf(train: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Mid-rank percentile of ``values`` within the training values (ties share a rank)."""
    lo = np.searchsorted(train, values, side="left")
    hi = np.searchsorted(train, values, side="right")
    return (lo + hi) / (2.0 * len(train))


class RecencyRFMBaseline(ClassifierMixin, BaseEstimator):
    """Churn or purchase probability from recency / frequency / monetary percentiles.

    Engagement is the mean of three percentiles against the training rows: recent
    activity (low ``recency``), high ``frequency``, high ``monetary`` (missing = worst).
    For ``kind="churn"`` the score is ``1 - engagement``; for ``"purchase"`` engagement
    itself. An increasing isotonic fit maps the score to a probability, so the churn
    probability never falls and the purchase probability never rises with recency.
    ``frequency=None`` and ``monetary=None`` leave those parts out: with both out it is the
    recency baseline (an isotonic map of recency alone).
    """

    def __init__(
        self,
        kind: Literal["churn", "purchase"] = "churn",
        recency: str = rfm.DAYS_SINCE_LAST_ACTIVITY.name,
        frequency: str | None = rfm.PURCHASES_TOTAL.name,
        monetary: str | None = rfm.REVENUE_TOTAL.name,
    ):
        self.kind = kind
        self.recency = recency
        self.frequency = frequency
        self.monetary = monetary

    def _columns(self) -> list[str]:
        return [c for c in (self.recency, self.frequency, self.monetary) if c is not None]

    def _rfm(self, X: pd.DataFrame, where: str) -> np.ndarray:
        """(n, 3) array oriented so that larger = more engaged, missing = least engaged."""
        cols = self._columns()
        missing = [c for c in cols if c not in getattr(X, "columns", [])]
        if missing:
            raise ChurnkitError(f"{where}: RFM baseline needs column(s) {missing}")
        F = check_features(X[cols], cols, where).to_numpy(copy=True)
        F[:, 0] = -np.nan_to_num(F[:, 0], nan=np.inf)
        F[:, 1:] = np.nan_to_num(F[:, 1:], nan=-np.inf)
        return F

    def _score(self, F: np.ndarray) -> np.ndarray:
        pct = np.column_stack([_ecdf(self.reference_[:, j], F[:, j]) for j in range(F.shape[1])])
        engagement = pct.mean(axis=1)
        return 1.0 - engagement if self.kind == "churn" else engagement

    def fit(self, X: pd.DataFrame, y: object) -> RecencyRFMBaseline:
        if self.kind not in ("churn", "purchase"):
            raise ChurnkitError(f"fit: RFM baseline kind must be 'churn' or 'purchase', got {self.kind!r}")
        F = self._rfm(X, "fit")
        y = check_binary_target(y, "fit")
        self.reference_ = np.sort(F, axis=0)
        self.classes_ = np.array([0.0, 1.0])
        self.isotonic_ = IsotonicRegression(y_min=0.0, y_max=1.0, increasing=True, out_of_bounds="clip")
        self.isotonic_.fit(self._score(F), y)
        return self

    def score_rows(self, X: pd.DataFrame) -> np.ndarray:
        """The uncalibrated combined percentile (risk for churn, engagement for purchase)."""
        check_is_fitted(self, "isotonic_")
        return self._score(self._rfm(X, "predict"))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        p = self.isotonic_.predict(self.score_rows(X))
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return (self.predict_proba(X)[:, 1] >= 0.5).astype("float64")


# --------------------------------------------------------------------------- last period

WINDOWS: dict[str, int] = {windows.revenue_name(w): w for w in windows.WINDOWS}
"""Trailing revenue features and their lengths in days."""


def comparable_window(horizon_days: int) -> str:
    """The trailing revenue window closest in length to the horizon (longer on a tie)."""
    return min(WINDOWS, key=lambda c: (abs(WINDOWS[c] - horizon_days), -WINDOWS[c]))


class LastPeriodRevenue(RegressorMixin, BaseEstimator):
    """``revenue in the last window * horizon / window``: "next period looks like the last".

    ``window=None`` picks the trailing window closest to the horizon (28 days -> 30 days).
    Nothing is learned; ``fit`` only checks the column.
    """

    def __init__(self, horizon_days: int = 28, window: str | None = None, window_days: int | None = None):
        self.horizon_days = horizon_days
        self.window = window
        self.window_days = window_days

    def fit(self, X: pd.DataFrame, y: object = None) -> LastPeriodRevenue:
        self.column_ = self.window or comparable_window(self.horizon_days)
        days = self.window_days or WINDOWS.get(self.column_)
        if not days:
            raise ChurnkitError(f"fit: window_days is needed for revenue column {self.column_!r}")
        self.scale_ = float(self.horizon_days) / float(days)
        self._revenue(X, "fit")
        return self

    def _revenue(self, X: pd.DataFrame, where: str) -> np.ndarray:
        if self.column_ not in getattr(X, "columns", []):
            raise ChurnkitError(f"{where}: last-period baseline needs column {self.column_!r}")
        return check_features(X[[self.column_]], [self.column_], where)[self.column_].to_numpy()

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        check_is_fitted(self, "scale_")
        return np.nan_to_num(self._revenue(X, "predict"), nan=0.0) * self.scale_


# --------------------------------------------------------------------------- BG/NBD

CLV_COLUMNS: dict[str, str] = {
    "frequency": rfm.CLV_FREQUENCY.name,
    "recency": rfm.CLV_RECENCY_DAYS.name,
    "T": rfm.CLV_AGE_DAYS.name,
    "monetary_value": rfm.CLV_MONETARY.name,
}
"""pymc-marketing summary column -> churnkit feature (all times in days)."""

BGNBD_FEATURES: tuple[FeatureSpec, ...] = (
    FeatureSpec("bgnbd_p_alive", "BG/NBD P(alive), fitted at the cutoff", "probability", "bgnbd"),
    FeatureSpec("bgnbd_expected_purchases", "BG/NBD expected purchases in the horizon", "count", "bgnbd"),
    FeatureSpec("bgnbd_p_purchase", "BG/NBD P(a purchase in the horizon)", "probability", "bgnbd"),
    FeatureSpec("bgnbd_expected_spend", "BG/NBD + Gamma-Gamma expected spend in the horizon", "currency", "bgnbd"),
)
"""What :class:`BGNBDBaseline` outputs, as features (``--stack-bgnbd`` adds them to a model)."""
BGNBD_OUTPUTS = tuple(f.name for f in BGNBD_FEATURES)

PARAM_EDGE = 1e4
"""A fitted BG/NBD or Gamma-Gamma shape beyond this ran off instead of converging (the
published CDNOW fit has all of them in 0.2..16, times in weeks)."""
MIN_DROPOUT_A = 1e-3
"""BG/NBD ``a`` below this: no dropout process identified (a = 0 is the NBD model)."""


def _clv() -> Any:
    """pymc-marketing's ``clv`` module, or a one-line error saying how to install it."""
    try:
        from pymc_extras.prior import Prior
        from pymc_marketing import clv
    except ImportError:
        raise ChurnkitError(
            "the BG/NBD baseline needs pymc-marketing: pip install 'churnkit[clv]'"
        ) from None
    for name in ("pymc", "pymc.stats.convergence", "pytensor", "pymc_marketing"):
        logging.getLogger(name).setLevel(logging.ERROR)
    return clv, Prior


def require_clv() -> None:
    """A one-line error saying how to install pymc-marketing when it is missing."""
    _clv()


def clv_summary(X: pd.DataFrame, unit_days: float = 7.0) -> pd.DataFrame:
    """pymc-marketing's summary frame (customer_id, frequency, recency, T, monetary_value)
    from the ``clv_*`` features, times in ``unit_days``; only users with a purchase."""
    missing = [c for c in CLV_COLUMNS.values() if c not in getattr(X, "columns", [])]
    if missing:
        raise ChurnkitError(f"BG/NBD: missing CLV summary feature(s) {missing}")
    F = check_features(X[list(CLV_COLUMNS.values())], list(CLV_COLUMNS.values()), "BG/NBD")
    col = CLV_COLUMNS
    df = pd.DataFrame(
        {
            "customer_id": np.arange(len(F)),
            "frequency": F[col["frequency"]].to_numpy(),
            "recency": F[col["recency"]].to_numpy() / unit_days,
            "T": F[col["T"]].to_numpy() / unit_days,
            "monetary_value": F[col["monetary_value"]].fillna(0.0).to_numpy(),
        },
        index=X.index,
    )
    customers = df["T"].notna() & df["frequency"].notna()
    df = df[customers].copy()
    # Same-day rounding can put the last purchase a hair after the horizon start.
    df["recency"] = np.minimum(df["recency"].fillna(0.0), df["T"])
    df.loc[df["frequency"] <= 0, ["recency", "monetary_value"]] = 0.0
    return df


class BGNBDBaseline(BaseEstimator):
    """BG/NBD (purchases, dropout) + Gamma-Gamma (spend) at one cutoff, fitted by MAP.

    Flat priors, so MAP is the maximum-likelihood fit of Fader, Hardie & Lee (2005) and
    reproduces the published CDNOW parameters. Unsupervised: ``fit`` uses only the
    customers' summary at the cutoff. Users with no purchase yet are outside the model:
    their outputs are NaN from :meth:`transform`; :meth:`predict_proba` and
    :meth:`predict` read them as 0 (no expected repeat purchase).
    """

    def __init__(self, horizon_days: int = 28, unit_days: float = 7.0):
        self.horizon_days = horizon_days
        self.unit_days = unit_days

    def fit(self, X: pd.DataFrame, y: object = None) -> BGNBDBaseline:
        clv, Prior = _clv()
        data = clv_summary(X, self.unit_days)
        if len(data) < 10 or (data["frequency"] > 0).sum() < 5:
            raise ChurnkitError(
                f"BG/NBD: {len(data)} customers, {(data['frequency'] > 0).sum()} repeat buyers; need at least 10 and 5"
            )
        flat = {k: Prior("HalfFlat") for k in ("r", "alpha", "a", "b")}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            bg = clv.BetaGeoModel(data=data[["customer_id", "frequency", "recency", "T"]], model_config=flat)
            bg.fit(method="map", progressbar=False)
            repeat = data[(data["frequency"] > 0) & (data["monetary_value"] > 0)]
            gg = clv.GammaGammaModel(data=repeat[["customer_id", "frequency", "monetary_value"]])
            gg.fit(method="map", progressbar=False)
        self.bgnbd_ = bg
        self.gamma_gamma_ = gg
        self.params_ = {k: float(v) for k, v in bg.fit_summary().items() if k in ("r", "alpha", "a", "b")}
        self.params_ |= {k: float(v) for k, v in gg.fit_summary().items() if k in ("p", "q", "v")}
        return self

    def degenerate(self) -> dict[str, str]:
        """Why a part of the fit cannot be trusted, by part (``bgnbd``, ``gamma_gamma``).

        MAP with flat priors can run to the edge of the parameter space instead of
        converging: ``a`` -> 0 means no dropout was identified (everyone alive forever:
        P(alive) = 1 and its churn scores rank by noise), a parameter at ~0 or beyond
        :data:`PARAM_EDGE` or not finite means the optimiser ran off; Gamma-Gamma's ``p`` or
        ``q`` beyond it means no spread of spend between customers was identified.
        """
        check_is_fitted(self, "params_")
        out = {}
        bg = {k: self.params_.get(k, float("nan")) for k in ("r", "alpha", "a", "b")}
        shown = ", ".join(f"{k}={v:.4g}" for k, v in bg.items())
        off = [k for k, v in bg.items() if not (np.isfinite(v) and 0 < v < PARAM_EDGE)]
        if np.isfinite(bg["a"]) and bg["a"] < MIN_DROPOUT_A:
            out["bgnbd"] = f"a = {bg['a']:.2g} ({shown}): no dropout identified, P(alive) = 1 for everyone"
        elif off:
            out["bgnbd"] = f"parameter(s) {', '.join(off)} at the edge or undefined ({shown}): not converged"
        gg = {k: self.params_.get(k, float("nan")) for k in ("p", "q", "v")}
        if any(not (np.isfinite(v) and 0 < v) for v in gg.values()) or max(gg["p"], gg["q"]) >= PARAM_EDGE:
            out["gamma_gamma"] = "no spread of spend identified (" + ", ".join(f"{k}={v:.4g}" for k, v in gg.items()) + ")"
        return out

    def transform(self, X: pd.DataFrame) -> pd.DataFrame:
        """p_alive, expected purchases, P(>= 1 purchase) and expected spend in the horizon."""
        check_is_fitted(self, "params_")
        data = clv_summary(X, self.unit_days)
        out = pd.DataFrame(np.nan, index=X.index, columns=list(BGNBD_OUTPUTS))
        if data.empty:
            return out
        t = self.horizon_days / self.unit_days
        mean = ("chain", "draw")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = data[["customer_id", "frequency", "recency", "T"]]
            alive = self.bgnbd_.expected_probability_alive(data=base).mean(mean).values
            n = self.bgnbd_.expected_purchases(data=base, future_t=t).mean(mean).values
            p0 = self.bgnbd_.expected_probability_no_purchase(t=t, data=base).mean(mean).values
            spend = self.gamma_gamma_.expected_customer_spend(
                data=data[["customer_id", "frequency", "monetary_value"]]
            ).mean(mean).values
        out.loc[data.index, "bgnbd_p_alive"] = alive
        out.loc[data.index, "bgnbd_expected_purchases"] = n
        out.loc[data.index, "bgnbd_p_purchase"] = np.clip(1.0 - p0, 0.0, 1.0)
        out.loc[data.index, "bgnbd_expected_spend"] = n * spend
        return out

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """P(any purchase in the horizon); non-customers 0."""
        p = self.transform(X)["bgnbd_p_purchase"].fillna(0.0).to_numpy()
        return np.column_stack([1.0 - p, p])

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Expected spend in the horizon; non-customers 0."""
        return self.transform(X)["bgnbd_expected_spend"].fillna(0.0).to_numpy()


def bgnbd_features(
    frame: pd.DataFrame,
    horizon_days: int,
    *,
    cutoff_col: str = "cutoff",
    unit_days: float = 7.0,
    outputs: Sequence[str] = BGNBD_OUTPUTS,
) -> pd.DataFrame:
    """BG/NBD outputs per row, one model fitted per cutoff on that cutoff's rows.

    For stacking: join the result onto the features (same index) and let LightGBM use it.
    Point-in-time safe, since each fit sees only the summaries at its own cutoff. A cutoff
    with too few customers to fit gets NaN, which LightGBM treats as missing.
    """
    if cutoff_col not in frame.columns:
        raise ChurnkitError(f"bgnbd_features: no {cutoff_col!r} column to fit per cutoff")
    parts = []
    for _, rows in frame.groupby(cutoff_col, sort=True):
        try:
            model = BGNBDBaseline(horizon_days, unit_days).fit(rows)
            parts.append(model.transform(rows))
        except ChurnkitError as e:
            if "pip install" in str(e):
                raise
            parts.append(pd.DataFrame(np.nan, index=rows.index, columns=list(BGNBD_OUTPUTS)))
    out = pd.concat(parts).reindex(frame.index) if parts else pd.DataFrame(columns=list(BGNBD_OUTPUTS))
    return out[list(outputs)]
