"""Realised against predicted, once a scoring run's outcome window has closed.

The scores a run gave and the labels that then came true (the training label code, see
:func:`churnkit.datasets.labels.realised_labels`) go through the very metrics training
reported on its test rows (:func:`churnkit.metrics.classifier_metrics`,
:func:`~churnkit.metrics.ltv_metrics`), so "0.78 at test, 0.74 realised" compares like with
like. Pure: arrays and frames in, numbers and a table out.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from churnkit.contracts import CLASSIFIER_KINDS
from churnkit.metrics import classifier_metrics, ltv_metrics

SEGMENT_COLUMNS = ("segment_by", "segment", "users", "predicted_total", "realised_total", "predicted_mean",
                   "realised_mean", "headline", "value")
MIN_SEGMENT_USERS = 30
"""A segment's headline needs at least this many users (and both outcomes, for a classifier)."""


def performance(kind: str, y: object, pred: object) -> dict[str, float]:
    """Training's test metrics for this kind, on realised outcomes."""
    return classifier_metrics(y, pred) if kind in CLASSIFIER_KINDS else ltv_metrics(y, pred)


def totals(y: object, pred: object) -> tuple[float, float]:
    """(predicted, realised) totals: expected vs actual churners or buyers, or revenue."""
    y = np.asarray(y, dtype="float64")
    p = np.asarray(pred, dtype="float64")
    ok = np.isfinite(y) & np.isfinite(p)
    return float(p[ok].sum()), float(y[ok].sum())


def by_segment(kind: str, headline: str, y: pd.Series, pred: pd.Series,
               segments: Mapping[str, pd.Series]) -> pd.DataFrame:
    """Predicted vs realised per value of each segmenting column (lifecycle stage, RFM tier),
    and overall: users, totals, means, and the headline metric where the segment is large
    enough to read it."""
    rows = []
    frame = pd.DataFrame({"y": y.to_numpy("float64"), "p": pred.to_numpy("float64")})
    groups: list[tuple[str, str, np.ndarray]] = [("all", "all", np.ones(len(frame), bool))]
    for name, values in segments.items():
        v = values.fillna("n/a").astype(str).to_numpy()
        groups += [(name, str(k), v == k) for k in sorted(set(v))]
    for by, key, mask in groups:
        part = frame[mask]
        predicted, realised = totals(part["y"], part["p"])
        n = len(part)
        enough = n >= MIN_SEGMENT_USERS and (kind not in CLASSIFIER_KINDS or part["y"].nunique() == 2)
        value = performance(kind, part["y"], part["p"]).get(headline, np.nan) if enough else np.nan
        rows.append({"segment_by": by, "segment": key, "users": n, "predicted_total": predicted,
                     "realised_total": realised, "predicted_mean": predicted / n if n else np.nan,
                     "realised_mean": realised / n if n else np.nan, "headline": headline, "value": value})
    return pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
