"""Metrics for scores and LTV predictions, comparable across models, baselines and truth.

Pure functions over arrays: no I/O, no MLflow (``io.tracking`` logs what these return).
Degenerate inputs (one class, all-zero revenue, empty) give NaN for the metrics that are
undefined there instead of raising, so a comparison table always renders.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy.stats import spearmanr
from sklearn.metrics import average_precision_score, roc_auc_score

TOPS: tuple[float, ...] = (0.05, 0.10, 0.20)
"""Top fractions for lift and capture rate: whom a campaign can reach."""

EPS = 1e-15


# --------------------------------------------------------------------------- helpers


def finite_pairs(y: object, s: object) -> tuple[np.ndarray, np.ndarray]:
    """Finite rows of (y, s) as float64; mismatched lengths are a programming error."""
    y = np.asarray(y, dtype="float64").ravel()
    s = np.asarray(s, dtype="float64").ravel()
    if y.shape != s.shape:
        raise ValueError(f"labels and scores differ in length: {len(y)} vs {len(s)}")
    ok = np.isfinite(y) & np.isfinite(s)
    return y[ok], s[ok]


def both_classes(y: np.ndarray) -> bool:
    """Whether 0/1 labels hold both outcomes: ROC and PR need one of each."""
    return len(y) > 0 and 0 < y.sum() < len(y)


def _tie_averaged_sorted(y: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``y`` ordered by descending score, each tie group replaced by its mean.

    That is the expectation over random tie-breaking, so a constant score gets the
    diagonal (no skill) rather than whatever order the rows arrived in.
    """
    order = np.argsort(-s, kind="stable")
    ys, ss = y[order], s[order]
    if len(ss) == 0:
        return ys
    starts = np.flatnonzero(np.r_[True, ss[1:] != ss[:-1]])
    sums = np.add.reduceat(ys, starts)
    counts = np.diff(np.r_[starts, len(ys)])
    return np.repeat(sums / counts, counts)


def gain_curve(y: object, score: object) -> tuple[np.ndarray, np.ndarray]:
    """Cumulative gain: (fraction of rows targeted, fraction of total y captured).

    Rows are taken in descending score (ties averaged); both arrays start at 0.
    Works for 0/1 labels (share of positives) and revenue (share of revenue).
    """
    y, s = finite_pairs(y, score)
    total = y.sum()
    n = len(y)
    if n == 0 or total <= 0:
        return np.array([0.0, 1.0]), np.array([np.nan, np.nan])
    captured = np.cumsum(_tie_averaged_sorted(y, s)) / total
    return np.r_[0.0, np.arange(1, n + 1) / n], np.r_[0.0, captured]


def _gini(y: np.ndarray, s: np.ndarray) -> float:
    """Raw Gini of the gain curve as in Wang et al. (2019): ``2 * mean(cum share) - 1``;
    NaN without a positive total."""
    captured = gain_curve(y, s)[1][1:]
    return float(2.0 * captured.mean() - 1.0)


def normalized_gini(y: object, pred: object) -> float:
    """Model Gini over the Gini of the perfect ordering (sorting by ``y`` itself).

    1 for a perfect ranking, ~0 for a random or constant one, negative when reversed.
    Following Wang, Liu & Miao (2019), "A Deep Probabilistic Model for Customer Lifetime
    Value Prediction" (zero-inflated lognormal): only the ordering of ``pred`` matters.
    NaN when ``y`` has no positive total or all ``y`` are equal.
    """
    y, s = finite_pairs(y, pred)
    perfect = _gini(y, y)
    if not np.isfinite(perfect) or perfect <= 0:
        return float("nan")
    return _gini(y, s) / perfect


def calibration_table(y: object, p: object, n_bins: int = 10) -> pd.DataFrame:
    """Mean score vs observed rate in equal-mass bins (quantiles of the score).

    Equal-mass, not equal-width: churn and purchase scores pile up near 0, so equal-width
    bins leave the informative high-score bins nearly empty and noisy. Ties at a bin edge
    stay together, so a bin can be larger than ``n / n_bins``.
    """
    y, p = finite_pairs(y, p)
    cols = ["bin", "n", "mean_score", "observed_rate"]
    if len(y) == 0:
        return pd.DataFrame(columns=cols)
    edges = np.unique(np.quantile(p, np.linspace(0, 1, n_bins + 1)))
    idx = np.clip(np.searchsorted(edges, p, side="right") - 1, 0, max(len(edges) - 2, 0))
    df = pd.DataFrame({"bin": idx, "y": y, "p": p})
    out = df.groupby("bin").agg(n=("y", "size"), mean_score=("p", "mean"), observed_rate=("y", "mean"))
    return out.reset_index()[cols]


def expected_calibration_error(y: object, p: object, n_bins: int = 10) -> float:
    """ECE: row-weighted mean |observed rate - mean score| over equal-mass bins."""
    t = calibration_table(y, p, n_bins)
    if t.empty:
        return float("nan")
    w = t["n"] / t["n"].sum()
    return float((w * (t["observed_rate"] - t["mean_score"]).abs()).sum())


def log_loss(y: object, p: object, eps: float = EPS) -> float:
    """Mean binary cross-entropy with ``p`` clipped to ``[eps, 1 - eps]``; NaN when empty."""
    y = np.asarray(y, dtype="float64").ravel()
    p = np.clip(np.asarray(p, dtype="float64").ravel(), eps, 1 - eps)
    if len(y) == 0:
        return float("nan")
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log1p(-p)))


def brier(y: object, p: object) -> float:
    """Mean squared error of a probability against 0/1 outcomes; NaN when empty."""
    return _mean_error(y, p, 2)


def rmse(y: object, pred: object) -> float:
    """Root mean squared error; NaN when empty."""
    return float(np.sqrt(_mean_error(y, pred, 2)))


def mae(y: object, pred: object) -> float:
    """Mean absolute error; NaN when empty."""
    return _mean_error(y, pred, 1)


def _mean_error(y: object, pred: object, power: int) -> float:
    d = np.asarray(pred, dtype="float64").ravel() - np.asarray(y, dtype="float64").ravel()
    return float(np.mean(np.abs(d) ** power)) if len(d) else float("nan")


def lift_capture(y: object, score: object, top: float) -> tuple[float, float]:
    """(lift, capture rate) when targeting the top ``top`` fraction by score.

    Capture is the share of all positives (or revenue) inside the top fraction; lift is
    capture / top. Fractional rows at the boundary are interpolated on the gain curve.
    """
    x, g = gain_curve(y, score)
    if not np.isfinite(g).all():
        return float("nan"), float("nan")
    capture = float(np.interp(top, x, g))
    return capture / top, capture


# --------------------------------------------------------------------------- metrics


def classifier_metrics(
    y: object, p: object, *, n_bins: int = 10, tops: Sequence[float] = TOPS
) -> dict[str, float]:
    """Discrimination, calibration and targeting metrics for a probability score.

    Keys: n, base_rate, roc_auc, pr_auc (average precision), log_loss, brier, ece
    (equal-mass bins), and lift_top{5,10,20} / capture_top{5,10,20} in percent of rows.
    """
    y, p = finite_pairs(y, p)
    n = len(y)
    both = both_classes(y)
    out: dict[str, float] = {
        "n": float(n),
        "base_rate": float(y.mean()) if n else float("nan"),
        "roc_auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "pr_auc": float(average_precision_score(y, p)) if both else float("nan"),
        "log_loss": log_loss(y, p),
        "brier": brier(y, p),
        "ece": expected_calibration_error(y, p, n_bins),
    }
    for top in tops:
        lift, capture = lift_capture(y, p, top)
        key = f"top{round(top * 100)}"
        out[f"lift_{key}"] = lift
        out[f"capture_{key}"] = capture
    return out


def decile_table(y: object, pred: object, n_bins: int = 10) -> pd.DataFrame:
    """Mean predicted and actual value per predicted decile (1 = highest predictions)."""
    y, s = finite_pairs(y, pred)
    cols = ["decile", "n", "mean_pred", "mean_actual"]
    if len(y) == 0:
        return pd.DataFrame(columns=cols)
    rank = pd.Series(-s).rank(method="first").to_numpy()
    decile = np.ceil(rank * n_bins / len(s)).astype(int)
    df = pd.DataFrame({"decile": decile, "y": y, "p": s})
    out = df.groupby("decile").agg(n=("y", "size"), mean_pred=("p", "mean"), mean_actual=("y", "mean"))
    return out.reset_index()[cols]


def decile_mape(y: object, pred: object, n_bins: int = 10) -> float:
    """MAPE of predicted vs actual revenue aggregated per predicted decile.

    Row-level MAPE is useless on zero-inflated revenue (division by zero); per decile it
    asks whether each value tier's total is right. Deciles with no actual revenue are left
    out; NaN if none remains.
    """
    t = decile_table(y, pred, n_bins)
    t = t[t["mean_actual"] > 0]
    if t.empty:
        return float("nan")
    return float(((t["mean_pred"] - t["mean_actual"]).abs() / t["mean_actual"]).mean())


def interval_metrics(y: object, low: object, high: object) -> dict[str, float]:
    """Share of ``y`` inside ``[low, high]`` (closed) and the mean width."""
    y = np.asarray(y, dtype="float64").ravel()
    lo = np.asarray(low, dtype="float64").ravel()
    hi = np.asarray(high, dtype="float64").ravel()
    ok = np.isfinite(y) & np.isfinite(lo) & np.isfinite(hi)
    if not ok.any():
        return {"coverage": float("nan"), "mean_width": float("nan")}
    y, lo, hi = y[ok], lo[ok], hi[ok]
    return {
        "coverage": float(np.mean((y >= lo) & (y <= hi))),
        "mean_width": float(np.mean(hi - lo)),
    }


def ltv_metrics(
    y: object, pred: object, low: object | None = None, high: object | None = None
) -> dict[str, float]:
    """Ranking, tier and error metrics for revenue predictions (+ interval when given).

    Keys: n, mean_actual, mean_pred, gini_norm, spearman, decile_mape, rmse, mae, and with
    an interval coverage and mean_width.
    """
    ya, pa = finite_pairs(y, pred)
    n = len(ya)
    varied = n > 1 and np.ptp(ya) > 0 and np.ptp(pa) > 0
    out: dict[str, float] = {
        "n": float(n),
        "mean_actual": float(ya.mean()) if n else float("nan"),
        "mean_pred": float(pa.mean()) if n else float("nan"),
        "gini_norm": normalized_gini(ya, pa),
        "spearman": float(spearmanr(ya, pa).statistic) if varied else float("nan"),
        "decile_mape": decile_mape(ya, pa),
        "rmse": rmse(ya, pa),
        "mae": mae(ya, pa),
    }
    if low is not None and high is not None:
        out |= interval_metrics(y, low, high)
    return out


def truth_share(metric_model: float, metric_truth: float, floor: float = 0.5) -> float:
    """How much of the achievable headroom a model reaches: ``(m - floor) / (truth - floor)``.

    E.g. (AUC - 0.5) / (AUC_truth - 0.5), or floor=0 for normalized Gini. NaN when the
    truth does not beat the floor or either value is missing.
    """
    m, t = float(metric_model), float(metric_truth)
    if not (np.isfinite(m) and np.isfinite(t)) or t - floor <= 0:
        return float("nan")
    return (m - floor) / (t - floor)


def compare_table(results: Mapping[str, Mapping[str, float]]) -> pd.DataFrame:
    """Metrics side by side: one row per metric, one column per model/baseline/truth.

    Column order follows ``results``; a metric missing for one entry shows as NaN.
    """
    df = pd.DataFrame({name: pd.Series(dict(m), dtype="float64") for name, m in results.items()})
    order = list(dict.fromkeys(k for m in results.values() for k in m))
    return df.reindex(order)
