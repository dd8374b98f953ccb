"""How well should a calibrated model do on users whose outcomes are not known yet?

Confidence-based performance estimation (CBPE): if the probabilities are calibrated, user
*i* turns out positive with probability ``p_i``, so every count behind a metric has an
expected value computed from the scores alone. The expected ROC-AUC is the expected number
of correctly ordered (positive, negative) pairs over the expected number of such pairs:

    sum_{i,j: p_i > p_j} p_i (1 - p_j)  +  half the tied pairs
    -------------------------------------------------------------
             sum_{i != j} p_i (1 - p_j)

(a ratio of expectations; with thousands of users it equals the expected AUC to well
under 0.01, tested by simulation). The caveat is the assumption itself: calibration
learnt on the training population. Under covariate shift the scores may stay calibrated
and the estimate stays right; if the link between features and outcome changes (concept
drift) the probabilities are wrong and so is every estimate made from them, which is why
realised performance replaces it as soon as outcomes arrive.
"""

from __future__ import annotations

import numpy as np

from churnkit.metrics import EPS, TOPS

CAVEAT = ("expected from the calibrated scores alone: right while the scores stay calibrated on these users;"
          " a change in how features relate to outcomes (concept drift) is invisible until outcomes arrive")


def expected_roc_auc(p: object) -> float:
    """Expected ROC-AUC of probabilities ``p`` under labels drawn from them (see module)."""
    p = np.asarray(p, dtype="float64").ravel()
    p = p[np.isfinite(p)]
    if len(p) < 2:
        return float("nan")
    values, inverse = np.unique(p, return_inverse=True)
    count = np.bincount(inverse).astype("float64")
    pos = count * values                      # expected positives per distinct score
    neg = count - pos                          # expected negatives per distinct score
    neg_below = np.concatenate(([0.0], np.cumsum(neg)[:-1]))
    tied = count * (count - 1) * values * (1 - values)   # ordered pairs i != j within a tie
    correct = float(np.sum(pos * neg_below) + 0.5 * np.sum(tied))
    pairs = float(pos.sum() * neg.sum() - np.sum(p * (1 - p)))
    return correct / pairs if pairs > 0 else float("nan")


def expected_metrics(p: object, tops: tuple[float, ...] = TOPS) -> dict[str, float]:
    """Under the names :func:`churnkit.metrics.classifier_metrics` uses: ``n``, ``base_rate``
    (expected positive rate = mean score), ``roc_auc``, ``log_loss`` (the scores' entropy)
    and ``capture_top<k>`` (the expected share of positives among the top k%)."""
    p = np.asarray(p, dtype="float64").ravel()
    p = p[np.isfinite(p)]
    n = len(p)
    out = {"n": float(n), "base_rate": float(p.mean()) if n else float("nan"), "roc_auc": expected_roc_auc(p)}
    q = np.clip(p, EPS, 1 - EPS)
    out["log_loss"] = float(-np.mean(q * np.log(q) + (1 - q) * np.log1p(-q))) if n else float("nan")
    order = np.sort(p)[::-1]
    total = order.sum()
    for top in tops:
        k = top * n
        whole = int(np.floor(k))
        head = order[:whole].sum() + (k - whole) * (order[whole] if whole < n else 0.0)
        out[f"capture_top{round(top * 100)}"] = float(head / total) if total > 0 else float("nan")
    return out
