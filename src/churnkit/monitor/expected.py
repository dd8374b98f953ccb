"""How well should a calibrated model do on users whose outcomes are not known yet?

Confidence-based performance estimation (CBPE): if the probabilities are calibrated, user
*i* turns out positive with probability ``p_i``, so every count behind a metric has an
expected value computed from the scores alone. The expected ROC-AUC is the expected number
of correctly ordered (positive, negative) pairs over the expected number of such pairs:

    sum_{i,j: p_i > p_j} p_i (1 - p_j)  +  half the tied pairs
    -------------------------------------------------------------
             sum_{i != j} p_i (1 - p_j)

(a ratio of expectations; with thousands of users it equals the expected AUC to well
under 0.01, tested by simulation). The probabilities believed are the scores re-mapped by
:func:`recalibrated` on the model's test rows, where outcomes are known, and the ranking
judged is the scores' own. The caveat is the assumption itself: calibration
learnt on the training population. Under covariate shift the scores may stay calibrated
and the estimate stays right; if the link between features and outcome changes (concept
drift) the probabilities are wrong and so is every estimate made from them, which is why
realised performance replaces it as soon as outcomes arrive.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit, logit
from sklearn.linear_model import LogisticRegression

from churnkit.metrics import EPS, TOPS

CAVEAT = ("expected from the calibrated scores alone: right while the scores stay calibrated on these users;"
          " a change in how features relate to outcomes (concept drift) is invisible until outcomes arrive")


def expected_roc_auc(p: object, score: object | None = None) -> float:
    """Expected ROC-AUC of the ranking by ``score`` (default: ``p`` itself) when user *i*
    turns out positive with probability ``p_i`` (see module). Tied scores count half."""
    p = np.asarray(p, dtype="float64").ravel()
    s = p if score is None else np.asarray(score, dtype="float64").ravel()
    ok = np.isfinite(p) & np.isfinite(s)
    p, s = p[ok], s[ok]
    if len(p) < 2:
        return float("nan")
    _, group = np.unique(s, return_inverse=True)
    pos = np.bincount(group, weights=p)            # expected positives per distinct score
    neg = np.bincount(group, weights=1 - p)        # expected negatives per distinct score
    own = np.bincount(group, weights=p * (1 - p))  # a user is never paired with itself
    neg_below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))
    tied = pos * neg - own                          # ordered pairs i != j within a tie
    correct = float(np.sum(pos * neg_below) + 0.5 * np.sum(tied))
    pairs = float(pos.sum() * neg.sum() - own.sum())
    return correct / pairs if pairs > 0 else float("nan")


def recalibrated(p: object, reference_scores: object, reference_labels: object) -> np.ndarray:
    """``p`` re-mapped by a logistic fit of outcomes on the scores' logits over rows with
    known outcomes (the model's test rows: out-of-sample, the latest it was judged on), as
    CBPE calibrates on its reference period. Two parameters (a slope and an intercept), so
    1,000 reference rows fit it stably; the ranking, and so the realised AUC, is unchanged.
    Measured on the simulator (``bench/bench_monitor.py``), it takes out most of a model's
    over-confidence (expected minus realised ROC-AUC on churn: +0.030 -> +0.009 on average)."""
    ref_s = np.asarray(reference_scores, dtype="float64").ravel()
    ref_y = np.asarray(reference_labels, dtype="float64").ravel()
    ok = np.isfinite(ref_s) & np.isfinite(ref_y)
    if ok.sum() < 2 or len(np.unique(ref_y[ok])) < 2:
        return np.asarray(p, dtype="float64").ravel()
    fit = LogisticRegression(C=1e6).fit(_logit(ref_s[ok]).reshape(-1, 1), ref_y[ok])
    return expit(fit.coef_[0, 0] * _logit(np.asarray(p, dtype="float64").ravel()) + fit.intercept_[0])


def _logit(p: np.ndarray) -> np.ndarray:
    return logit(np.clip(p, 1e-6, 1 - 1e-6))


def expected_metrics(p: object, score: object | None = None, tops: tuple[float, ...] = TOPS) -> dict[str, float]:
    """Under the names :func:`churnkit.metrics.classifier_metrics` uses: ``n``, ``base_rate``
    (expected positive rate = mean probability), ``roc_auc``, ``log_loss`` (of ``score``
    against labels drawn from ``p``) and ``capture_top<k>`` (the expected share of positives
    among the top k% by ``score``). ``p``: the probabilities believed (default: the scores)."""
    p = np.asarray(p, dtype="float64").ravel()
    s = p if score is None else np.asarray(score, dtype="float64").ravel()
    ok = np.isfinite(p) & np.isfinite(s)
    p, s = p[ok], s[ok]
    n = len(p)
    out = {"n": float(n), "base_rate": float(p.mean()) if n else float("nan"), "roc_auc": expected_roc_auc(p, s)}
    q = np.clip(s, EPS, 1 - EPS)
    out["log_loss"] = float(-np.mean(p * np.log(q) + (1 - p) * np.log1p(-q))) if n else float("nan")
    order = p[np.argsort(-s, kind="mergesort")]
    total = order.sum()
    for top in tops:
        k = top * n
        whole = int(np.floor(k))
        head = order[:whole].sum() + (k - whole) * (order[whole] if whole < n else 0.0)
        out[f"capture_top{round(top * 100)}"] = float(head / total) if total > 0 else float("nan")
    return out
