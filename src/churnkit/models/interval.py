"""A calibrated prediction interval for zero-inflated revenue: ``ltv_low``, ``ltv_high``.

Revenue over a horizon is 0 with probability ``1 - p(x)`` and otherwise spread around
``m(x)``, the expected spend of a buyer (the two parts of the hurdle model). The predictive
distribution is that mixture with a gamma spend of one fitted shape ``k``::

    F_x(y) = (1 - p) + p * Gamma(y; shape k, mean m)      for y >= 0

Each user's interval holds a share ``c`` of their own distribution: the central one (tails
split as the nominal levels split them, 10%/10% for ``(0.1, 0.9)``), except that a chance of
zero at least as large as the lower tail puts ``ltv_low`` at 0 (``[0, Q(c)]``), and a chance of
zero above ``c`` makes it ``[0, 0]``. So the width follows the prediction (a larger or likelier
spend, a wider range) and ``ltv_low`` is above 0 exactly for users whose 10th percentile is.

Calibration (split conformal over this nested family): on held-out rows (the last training
cutoff) ``c`` is the smallest share at which at least the nominal share of realised values
falls inside, whatever the spend distribution really is; the realised coverage on later
cutoffs is measured on the test cutoff and recorded with the training metrics. Zeros can only
be covered whole: when most users buy nothing their ``[0, 0]`` covers more than the nominal
share, ``c`` falls to compensate, but never below :data:`MIN_CONTENT` of the nominal, and
beyond that the interval covers more than nominal (recorded, not hidden).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import special
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from churnkit.errors import ChurnkitError

MIN_ROWS = 50
"""Fewer calibration rows than this keep the nominal share (nothing to calibrate on)."""
MIN_CONTENT = 0.75
"""The calibrated share never drops below three quarters of the nominal one: below that a
buyer's interval would stop meaning what its level says."""
SHAPE_BOUNDS = (0.05, 1000.0)
BISECTION_STEPS = 40


def mixture_quantile(alpha: float | np.ndarray, p: np.ndarray, m: np.ndarray, shape: float) -> np.ndarray:
    """``Q_x(alpha)`` of 0 w.p. ``1 - p``, else Gamma(shape, mean ``m``), row by row."""
    alpha = np.broadcast_to(np.asarray(alpha, dtype="float64"), p.shape)
    with np.errstate(divide="ignore", invalid="ignore"):
        inner = np.where(p > 0, (alpha - (1.0 - p)) / p, 0.0)
    positive = (inner > 0) & (m > 0)
    out = np.zeros(p.shape, dtype="float64")
    if positive.any():
        scale = m[positive] / shape
        out[positive] = gamma_ppf(np.minimum(inner[positive], 1.0), shape, scale)
    return out


def gamma_ppf(q: np.ndarray, shape: float, scale: np.ndarray) -> np.ndarray:
    """``scipy.stats.gamma.ppf(q, shape, scale=scale)`` for ``0 < q <= 1``: the same special
    function and arithmetic (``gammaincinv(shape, q) * scale + 0``; infinity at ``q = 1``;
    NaN where ``scale`` is not positive) without ``rv_continuous``'s generic argument
    handling, which cost ~60 us a call, a tenth of scoring one row."""
    out = np.full(q.shape, np.nan)
    ok = scale > 0
    inside = ok & (q < 1)
    out[inside] = special.gammaincinv(shape, q[inside]) * scale[inside] + 0.0
    out[ok & (q == 1)] = np.inf
    return out


def share_interval(p: np.ndarray, m: np.ndarray, shape: float, content: float,
                   lower_share: float) -> tuple[np.ndarray, np.ndarray]:
    """Each row's interval holding ``content`` of its distribution: tails ``lower_share`` :
    ``1 - lower_share`` of the rest, with the zero atom absorbing the lower tail when it can."""
    a = (1.0 - content) * lower_share
    atom = 1.0 - p
    low = np.where(atom >= a, 0.0, mixture_quantile(a, p, m, shape))
    high = mixture_quantile(np.where(atom >= a, content, a + content), p, m, shape)
    return low, np.maximum(low, np.where(atom >= content, 0.0, high))


def gamma_shape(y: np.ndarray, m: np.ndarray) -> float:
    """Shape of a gamma spend around the predicted buyer means, by moments of ``y / m`` on
    the rows with revenue (1 / squared coefficient of variation), bounded."""
    ratio = y / m
    ratio = ratio[np.isfinite(ratio) & (ratio > 0)]
    if len(ratio) < 2 or ratio.var() <= 0:
        return SHAPE_BOUNDS[1] if len(ratio) >= 2 else 1.0
    return float(np.clip(ratio.mean() ** 2 / ratio.var(), *SHAPE_BOUNDS))


class RevenueInterval(BaseEstimator):
    """The interval of a hurdle revenue model, calibrated on held-out rows.

    Parameters
    ----------
    quantiles : (low, high), the nominal levels (``(0.1, 0.9)``: an 80% interval, tails
        split evenly).

    Attributes
    ----------
    shape_ : the gamma spend shape.
    content_ : the calibrated share ``c`` of each user's distribution inside the interval.
    calibration_ : rows, nominal coverage, coverage at the nominal share and at the
        calibrated one on the calibration rows, the share and the shape.

    Examples
    --------
    >>> iv = RevenueInterval((0.1, 0.9)).fit(p_cal, m_cal, y_cal)   # doctest: +SKIP
    >>> low, high = iv.predict(p, m)                                 # doctest: +SKIP
    """

    def __init__(self, quantiles: tuple[float, float] = (0.1, 0.9)):
        self.quantiles = quantiles

    def _levels(self) -> tuple[float, float]:
        lo, hi = (float(q) for q in self.quantiles)
        if not 0.0 < lo < hi < 1.0:
            raise ChurnkitError(f"interval: quantiles must satisfy 0 < low < high < 1, got {self.quantiles}")
        return hi - lo, lo / (lo + 1.0 - hi)

    def fit(self, p: Any, m: Any, y: Any) -> RevenueInterval:
        """``p`` = P(revenue > 0), ``m`` = E[revenue | revenue > 0] and the realised ``y``
        of held-out rows."""
        nominal, lower = self._levels()
        p, m, y = (np.asarray(v, dtype="float64").ravel() for v in (p, m, y))
        ok = np.isfinite(p) & np.isfinite(m) & np.isfinite(y)
        p, m, y = np.clip(p[ok], 0.0, 1.0), m[ok], y[ok]
        self.shape_ = gamma_shape(y[y > 0], m[y > 0]) if (y > 0).any() else 1.0

        def coverage(c: float) -> float:
            low, high = share_interval(p, m, self.shape_, c, lower)
            return float(np.mean((y >= low) & (y <= high))) if len(y) else float("nan")

        self.content_ = nominal
        if len(y) >= MIN_ROWS and (y > 0).any():
            floor, top = MIN_CONTENT * nominal, 1.0 - 1e-9
            if coverage(floor) >= nominal:
                self.content_ = floor
            elif coverage(top) >= nominal:
                for _ in range(BISECTION_STEPS):  # smallest share covering the nominal share
                    mid = (floor + top) / 2
                    floor, top = (floor, mid) if coverage(mid) >= nominal else (mid, top)
                self.content_ = top
        self.calibration_ = {
            "rows": len(y),
            "nominal": nominal,
            "coverage_nominal_share": coverage(nominal),
            "coverage": coverage(self.content_),
            "content": self.content_,
            "gamma_shape": self.shape_,
        }
        return self

    def predict(self, p: Any, m: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(ltv_low, ltv_high)`` for rows with purchase probability ``p`` and buyer mean ``m``."""
        check_is_fitted(self, "content_")
        p = np.clip(np.asarray(p, dtype="float64").ravel(), 0.0, 1.0)
        m = np.asarray(m, dtype="float64").ravel()
        return share_interval(p, m, self.shape_, self.content_, self._levels()[1])
