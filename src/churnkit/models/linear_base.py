"""The strong simple model the boosted models start from: a GLM on log recency, frequency
and monetary value.

On real purchase logs a logistic regression on the logs of a few RFM columns (with their
squares and pairwise products: recency means more for a frequent buyer) ranks who buys
again better than LightGBM on 36 features (CDNOW, 39-week holdout: 0.772 vs 0.767
ROC-AUC), and a Tweedie GLM on them ranks value better (normalized Gini 0.719 vs 0.706):
trees learn a step function of recency and frequency from a few cutoffs and extrapolate it
flat, the GLM's smooth shape carries over to older customers and longer horizons. Boosting
*from* the GLM's margin (LightGBM ``init_score``) keeps that shape and lets the trees learn
only corrections (bench/RESULTS.md has each figure).

:class:`LinearBase` is that GLM, one definition for the boosted models (their base
margin) and for the reports (the ``linear_rfm`` baseline). Each column enters as
``log1p(max(x, 0))``, standardised, plus a was-missing indicator where the training rows had missing values (never purchased: recency
unknown is not recency 0).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
import pandas as pd
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression, TweedieRegressor
from sklearn.metrics import roc_auc_score

from churnkit.errors import ChurnkitError
from churnkit.features.families.rfm import RFM_CORE
from churnkit.metrics import both_classes

BASE_COLUMNS: tuple[str, ...] = tuple(f.name for f in RFM_CORE)
"""The columns the base reads, where the model has them."""

Link = Literal["logit", "log"]


@lru_cache(maxsize=64)
def _positions(names: tuple[str, ...], columns: tuple[str, ...]) -> tuple[int, ...]:
    """Where ``columns`` are among ``names`` (cached: a model asks with the same names each call)."""
    at = {n: i for i, n in enumerate(names)}
    return tuple(at[c] for c in columns)


@lru_cache(maxsize=64)
def _pair_index(pairs: tuple[tuple[int, int], ...]) -> tuple[np.ndarray, np.ndarray]:
    """The pairs' first and second columns as index arrays (building them cost more than the
    products for one row)."""
    i, j = np.array(pairs).T
    return i, j


@lru_cache(maxsize=64)
def _layout(flags: tuple[bool, ...]) -> tuple[list[int], list[int], list[int]]:
    """Where :meth:`LinearBase._first_of` puts each column's term and each flagged column's
    missing indicator (right after its term), and which columns are flagged."""
    first_at, flag_at, flagged, k = [], [], [], 0
    for i, flag in enumerate(flags):
        first_at.append(k)
        k += 1
        if flag:
            flag_at.append(k)
            flagged.append(i)
            k += 1
    return first_at, flag_at, flagged


class LinearBase:
    """A GLM on ``log1p`` of :data:`BASE_COLUMNS` (and, ``degree=2``, their pairwise
    products): ``logit`` (logistic regression, 0/1 labels) or ``log`` (Tweedie,
    non-negative revenue); :meth:`margin` is on the link scale.

    A small L2 penalty (``alpha``, on standardised terms) keeps collinear columns (on a
    purchase-only log, activity and purchase recency are the same column) stable.
    ``degree`` defaults to 2 for ``logit`` and 1 for ``log``; :func:`fit_base` chooses it
    on later rows instead (the pair products lifted CDNOW's 39-week "buys again" from 0.769
    to 0.772 ROC-AUC but cost Complete Journey's churn, 6,000 training rows, 0.016).
    """

    def __init__(self, link: Link, variance_power: float = 1.5, alpha: float = 1e-4, degree: int | None = None) -> None:
        self.link = link
        self.variance_power = variance_power
        self.alpha = alpha
        self.degree = degree

    @staticmethod
    def columns_in(names: Sequence[str]) -> list[str]:
        """The base columns among a model's features, in :data:`BASE_COLUMNS` order."""
        have = set(names)
        return [c for c in BASE_COLUMNS if c in have]

    def _first(self, X: pd.DataFrame) -> np.ndarray:
        return self._first_of(X[self.columns_].to_numpy("float64"))

    def _first_of(self, V: np.ndarray) -> np.ndarray:
        """Standardised first-order terms of the base columns' values (``V``: rows x
        ``columns_``): each column's ``log1p`` term, a flagged column's missing indicator right
        after it. Every step is one call on all columns (a call per column cost ~0.1 ms a
        model on the service's single rows)."""
        missing = np.isnan(V)
        terms = np.log1p(np.clip(np.where(missing, 0.0, V), 0.0, None))
        first_at, flag_at, flagged = _layout(tuple(self.flags_))
        E = np.empty((len(V), len(self.flags_) + len(flagged)))
        E[:, first_at] = terms
        E[:, flag_at] = missing[:, flagged]
        return (E - self.mean1_) / self.scale1_

    def _design(self, X: pd.DataFrame) -> np.ndarray:
        """Standardised first-order terms, then the standardised pair products."""
        return self._with_pairs(self._first(X))

    def _with_pairs(self, D: np.ndarray) -> np.ndarray:
        if not self.pairs_:
            return D
        i, j = _pair_index(tuple(map(tuple, self.pairs_)))
        P = D[:, i] * D[:, j]  # every pair product in one operation: exact, as column by column
        return np.hstack([D, (P - self.mean2_) / self.scale2_])

    def fit(self, X: pd.DataFrame, y: np.ndarray, columns: Sequence[str]) -> LinearBase | None:
        """Fit on ``columns`` of ``X``; None when none of them varies (nothing to start from)."""
        degree = self.degree if self.degree is not None else (2 if self.link == "logit" else 1)
        if self.link not in ("logit", "log") or degree not in (1, 2):
            raise ChurnkitError(f"LinearBase: link logit|log and degree 1|2, got {self.link!r}, {self.degree!r}")
        self.columns_ = list(columns)
        self.flags_ = [bool(X[c].isna().any()) for c in self.columns_]
        owners = [c for c, f in zip(self.columns_, self.flags_) for _ in range(1 + f)]
        self.mean1_, self.scale1_, self.pairs_ = 0.0, 1.0, []
        E = self._first(X)
        sd = E.std(axis=0)
        varied = np.flatnonzero(sd > 1e-12)
        if not len(varied):
            return None
        self.mean1_, self.scale1_ = E.mean(axis=0), np.where(sd > 1e-12, sd, 1.0)
        D = (E - self.mean1_) / self.scale1_
        self.owners_ = [(o, o) for o in owners]
        self.degree_ = degree
        if degree == 2:
            pairs = [(int(i), int(j)) for a, i in enumerate(varied) for j in varied[a:]]
            P = np.column_stack([D[:, i] * D[:, j] for i, j in pairs])
            sd2 = P.std(axis=0)
            self.pairs_ = [p for p, s in zip(pairs, sd2) if s > 1e-12]  # an indicator squared is itself
            P = P[:, sd2 > 1e-12]
            self.mean2_, self.scale2_ = P.mean(axis=0), P.std(axis=0)
            D = np.hstack([D, (P - self.mean2_) / self.scale2_])
            self.owners_ += [(owners[i], owners[j]) for i, j in self.pairs_]
        y = np.asarray(y, dtype="float64")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            if self.link == "logit":
                glm = LogisticRegression(C=1.0 / max(self.alpha * len(y), 1e-12), max_iter=1000)
                glm.fit(D, y.astype(int))
                coef, intercept = glm.coef_.ravel(), float(glm.intercept_[0])
            else:
                glm = TweedieRegressor(power=self.variance_power, link="log", alpha=self.alpha, max_iter=1000)
                glm.fit(D, y)
                coef, intercept = np.asarray(glm.coef_), float(glm.intercept_)
        self.coef_ = np.where(D.std(axis=0) > 1e-12, coef, 0.0)
        self.intercept_ = intercept
        return self

    def _terms(self, X: pd.DataFrame) -> np.ndarray:
        # not held to the training range: older customers than any training row are where
        # the smooth shape pays (on CDNOW clipping cost 0.003 AUC and 0.003 Gini)
        return self._design(X) * self.coef_

    def margin(self, X: pd.DataFrame) -> np.ndarray:
        """The link-scale prediction (log-odds, or log expected revenue)."""
        return self.intercept_ + self._terms(X).sum(axis=1)

    def margin_matrix(self, A: np.ndarray, names: Sequence[str]) -> np.ndarray:
        """:meth:`margin` for a float64 matrix whose columns are ``names``: the same terms
        (:meth:`_first_of`), without a frame (the service's path)."""
        key = tuple(names.tolist()) if isinstance(names, np.ndarray) else tuple(map(str, names))  # str() per item of an array: ~30 us
        at = _positions(key, tuple(self.columns_))
        D = self._with_pairs(self._first_of(A[:, list(at)]))
        return self.intercept_ + (D * self.coef_).sum(axis=1)

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """On the label's scale: a probability (logit) or expected revenue (log)."""
        m = self.margin(X)
        return 1.0 / (1.0 + np.exp(-m)) if self.link == "logit" else np.exp(m)

    def contributions(self, X: pd.DataFrame, names: Sequence[str]) -> np.ndarray:
        """Exact additive contributions to :meth:`margin` as an ``(n, len(names) + 1)``
        array in ``names`` order, ``bias`` last: each term (zero mean over the training
        rows) goes to its column, a pair product half to each of its two. Added to a
        booster's TreeSHAP they explain the whole margin."""
        out = np.zeros((len(X), len(names) + 1))
        index = {n: i for i, n in enumerate(names)}
        for term, (a, b) in zip(self._terms(X).T, self.owners_):
            out[:, index[a]] += term / 2
            out[:, index[b]] += term / 2
        out[:, -1] = self.intercept_
        return out

    def describe(self) -> dict[str, float]:
        """Coefficient per term (standardised scale), for reports."""
        labels = [f"{c}{'_missing' if k else ''}" for c, f in zip(self.columns_, self.flags_) for k in range(1 + f)]
        names = labels + [f"{labels[i]}*{labels[j]}" for i, j in self.pairs_]
        return {"degree": float(self.degree_), "intercept": self.intercept_,
                **{n: float(w) for n, w in zip(names, self.coef_)}}


def fit_base(
    link: Link, X: pd.DataFrame, y: np.ndarray, columns: Sequence[str],
    eval_set: tuple[pd.DataFrame, np.ndarray] | None = None, variance_power: float = 1.5,
) -> LinearBase | None:
    """The base for a boosted model; None when no column varies.

    ``log`` (revenue): first-order terms; exponentiated, pair products extrapolate badly to
    bigger customers than the training rows hold. ``logit``: with later rows (``eval_set``)
    the degree that ranks them better (ROC-AUC; a tie keeps degree 1; the level is the
    calibration's job, and on Complete Journey log loss preferred the pair products that
    ranked worse), else degree 2.
    """
    if not columns:
        return None
    if link == "log" or eval_set is None or len(eval_set[1]) == 0 or not both_classes(eval_set[1]):
        return LinearBase(link, variance_power).fit(X, y, columns)
    Xv, yv = eval_set[0], np.asarray(eval_set[1], dtype="float64")
    best, best_score = None, -np.inf
    for degree in (1, 2):
        base = LinearBase(link, variance_power, degree=degree).fit(X, y, columns)
        if base is None:
            return None
        s = float(roc_auc_score(yv, base.margin(Xv)))
        if s > best_score:
            best, best_score = base, s
    return best
