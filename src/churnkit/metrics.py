"""Metrics for scores and LTV predictions, comparable across models, baselines and truth.

Pure functions over arrays: no I/O, no MLflow (``io.tracking`` logs what these return).
Degenerate inputs (one class, all-zero revenue, empty) give NaN for the metrics that are
undefined there instead of raising, so a comparison table always renders.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import sparse
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


def mean_abs_shap(contributions: pd.DataFrame) -> pd.Series:
    """Each feature's mean |contribution| over the rows (a ``bias`` column left out), largest
    first, ties in column order: what a model leans on for these rows. The one ranking the
    SHAP chart, the model card and drift's "top drivers" use."""
    c = contributions.drop(columns="bias", errors="ignore").abs().mean()
    return c.sort_values(ascending=False, kind="mergesort")


def classifier_metrics(
    y: object, p: object, *, n_bins: int = 10, tops: Sequence[float] = TOPS
) -> dict[str, float]:
    """Discrimination, calibration and targeting metrics for a probability score.

    Keys: n, base_rate (the realised rate), mean_pred (the mean predicted probability:
    against base_rate, whether the level is right), roc_auc, pr_auc (average precision),
    log_loss, brier, ece (equal-mass bins), and lift_top{5,10,20} / capture_top{5,10,20}
    in percent of rows.
    """
    y, p = finite_pairs(y, p)
    n = len(y)
    both = both_classes(y)
    out: dict[str, float] = {
        "n": float(n),
        "base_rate": float(y.mean()) if n else float("nan"),
        "mean_pred": float(p.mean()) if n else float("nan"),
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


# --------------------------------------------------------------------------- paired bootstrap


def _tie_groups(values: np.ndarray, descending: bool = False) -> tuple[sparse.csr_array, int]:
    """(rows x tie groups) 0/1 matrix of ``values`` in ascending (or descending) order:
    ``weights @ it`` sums row weights per tie group for many weight vectors at once."""
    _, codes = np.unique(values, return_inverse=True)
    k = int(codes.max()) + 1 if len(codes) else 0
    codes = k - 1 - codes if descending else codes
    return sparse.csr_array((np.ones(len(codes)), (np.arange(len(codes)), codes)), shape=(len(codes), k)), k


def _group_sums(groups: sparse.csr_array, W: np.ndarray) -> np.ndarray:
    """(replicates x tie groups) weighted sums, row-major for the cumulative sums."""
    return np.ascontiguousarray((groups.T @ W.T).T)


def _weighted_auc(y: np.ndarray, s: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """ROC-AUC of ``s`` for 0/1 ``y`` under each row of a (replicates x rows) weight
    matrix; ties count one half."""
    groups, _ = _tie_groups(s)
    pos_rows, neg_rows = groups.multiply(y[:, None]).tocsr(), groups.multiply(1.0 - y[:, None]).tocsr()

    def auc(W: np.ndarray) -> np.ndarray:
        pos, neg = (_group_sums(m, W) for m in (pos_rows, neg_rows))
        n_pos, n_neg = pos.sum(axis=1), neg.sum(axis=1)
        below = np.cumsum(neg, axis=1) - neg
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (pos * (below + 0.5 * neg)).sum(axis=1) / (n_pos * n_neg)
        return np.where((n_pos > 0) & (n_neg > 0), out, np.nan)

    return auc


def _weighted_gini(y: np.ndarray, s: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    """:func:`normalized_gini` under each row of a weight matrix (weight 2 = the row twice)."""
    parts = [_tie_groups(v, descending=True)[0] for v in (s, y)]  # by score; perfect: by y
    sums = [(g, g.multiply(y[:, None]).tocsr()) for g in parts]

    def raw(rows_of: sparse.csr_array, total_of: sparse.csr_array, W: np.ndarray) -> np.ndarray:
        # a tie group of W rows and total S adds W * (total before it) + S * (W + 1) / 2 to
        # the sum of cumulative totals over rows: the tie-averaged gain curve
        rows, total = _group_sums(rows_of, W), _group_sums(total_of, W)
        n, t = rows.sum(axis=1), total.sum(axis=1)
        before = np.cumsum(total, axis=1) - total
        with np.errstate(invalid="ignore", divide="ignore"):
            g = 2.0 * (rows * before + total * (rows + 1.0) / 2.0).sum(axis=1) / (n * t) - 1.0
        return np.where(t > 0, g, np.nan)

    def gini(W: np.ndarray) -> np.ndarray:
        model, perfect = raw(*sums[0], W), raw(*sums[1], W)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(perfect > 0, model / perfect, np.nan)

    return gini


BOOTSTRAP_METRICS: dict[str, Callable[[np.ndarray, np.ndarray], Callable[[np.ndarray], np.ndarray]]] = {
    "roc_auc": _weighted_auc, "gini_norm": _weighted_gini,
}
"""Metrics :func:`paired_bootstrap` resamples: the headline metrics of a training report."""

_BOOTSTRAP_CELLS = 2_000_000
"""Weights held at once (replicates x rows): replicates run in chunks of this size."""


def paired_bootstrap(
    y: object, a: object, b: object, metric: str = "roc_auc", *, groups: object = None,
    n_boot: int = 1000, level: float = 0.95, seed: int = 0,
) -> dict[str, float]:
    """``metric(a) - metric(b)`` on the same rows, with a percentile bootstrap interval.

    Paired: each replicate draws whole groups (users; rows when ``groups`` is None) with
    replacement and scores both on the same draw, so what the two scores share (which users
    are easy) cancels out of the difference; drawing users, not rows, keeps a user's rows at
    several cutoffs together. Rows where ``y``, ``a`` or ``b`` is missing are left out.
    Keys: estimate, low, high, level, n_boot (replicates with a defined metric), n_groups;
    NaN bounds when fewer than half the replicates define the metric.
    """
    return _bootstrap(y, [a, b], metric, groups, n_boot, level, seed, lambda fa, fb: lambda W: fa(W) - fb(W))


def bootstrap_interval(
    y: object, s: object, metric: str = "roc_auc", *, groups: object = None,
    n_boot: int = 1000, level: float = 0.95, seed: int = 0,
) -> dict[str, float]:
    """``metric(s)`` with a percentile bootstrap interval: :func:`paired_bootstrap`'s
    resampling (whole groups, the same draws for the same seed and rows) applied to one
    score, so intervals of several scores drawn with one seed come from the same replicates.
    Same keys as :func:`paired_bootstrap`."""
    return _bootstrap(y, [s], metric, groups, n_boot, level, seed, lambda f: f)


def _bootstrap(y: object, scores: Sequence[object], metric: str, groups: object, n_boot: int, level: float,
               seed: int, statistic: Callable[..., Callable[[np.ndarray], np.ndarray]]) -> dict[str, float]:
    """``statistic(*per-score weighted metrics)`` on the rows and on ``n_boot`` group draws."""
    if metric not in BOOTSTRAP_METRICS:
        raise ValueError(f"paired_bootstrap: metric must be one of {sorted(BOOTSTRAP_METRICS)}, got {metric!r}")
    y, *ss = (np.asarray(v, dtype="float64").ravel() for v in (y, *scores))
    if any(s.shape != y.shape for s in ss):
        raise ValueError(f"paired_bootstrap: lengths differ: {', '.join(str(len(v)) for v in (y, *ss))}")
    g = np.arange(len(y)) if groups is None else np.asarray(groups).ravel()
    if len(g) != len(y):
        raise ValueError(f"paired_bootstrap: {len(g)} groups for {len(y)} rows")
    ok = np.isfinite(y) & np.logical_and.reduce([np.isfinite(s) for s in ss])
    y, ss, g = y[ok], [s[ok] for s in ss], g[ok]
    nan = float("nan")
    if len(y) == 0:
        return {"estimate": nan, "low": nan, "high": nan, "level": float(level), "n_boot": 0.0, "n_groups": 0.0}
    stat = statistic(*(BOOTSTRAP_METRICS[metric](y, s) for s in ss))
    estimate = float(stat(np.ones((1, len(y))))[0])
    _, members = np.unique(g, return_inverse=True)
    n_groups = int(members.max()) + 1
    rng = np.random.default_rng(seed)
    chunk = max(1, min(n_boot, _BOOTSTRAP_CELLS // len(y)))
    values = []
    for start in range(0, n_boot, chunk):
        r = min(chunk, n_boot - start)
        draws = rng.integers(0, n_groups, (r, n_groups)) + n_groups * np.arange(r)[:, None]
        W = np.bincount(draws.ravel(), minlength=r * n_groups).reshape(r, n_groups)[:, members].astype("float64")
        values.append(stat(W))
    done = np.concatenate(values)
    done = done[np.isfinite(done)]
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(done, [tail, 1.0 - tail]) if len(done) >= max(n_boot / 2, 1) else (nan, nan)
    return {"estimate": estimate, "low": float(low), "high": float(high), "level": float(level),
            "n_boot": float(len(done)), "n_groups": float(n_groups)}


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


def latest_change(table: pd.DataFrame, column: str, year_back: pd.DateOffset | pd.Timedelta) -> dict[str, object]:
    """A period table's (``period``, ``complete``, ``column``) latest complete period: its
    value, the previous complete period's, and the one ``year_back`` earlier (None where the
    data does not reach). The one definition of "this period vs last and vs a year ago" the
    console and the reports both show."""
    done = table[table["complete"]]
    if done.empty:
        return {"period": None, "value": None, "previous": None, "year_ago": None}
    last = done.iloc[-1]
    year = (pd.Timestamp(last["period"]) - year_back).date()
    match = done[done["period"] == year]
    return {"period": last["period"], "value": last[column],
            "previous": done.iloc[-2][column] if len(done) > 1 else None,
            "year_ago": match.iloc[0][column] if len(match) else None}


def relative_change(value: object, reference: object) -> float | None:
    """``value / reference - 1``; None where the reference is missing, zero or not finite."""
    if reference is None or value is None:
        return None
    ref = float(reference)  # type: ignore[arg-type]
    return float(value) / ref - 1 if ref and np.isfinite(ref) else None  # type: ignore[arg-type]
