"""Lifecycle stages (new, active, silent, churned, recalled), cut to the data's rhythm.

A fixed "30 days without activity = churned" suits a daily app and mislabels a shop whose
customers buy every few months (on such a log it calls most buyers churned while far fewer
really leave). Unless ``scoring.segments`` sets them, the silent and churned cuts come from
the gaps between consecutive active days before the as-of date, pooled over all users:

- *churned*: silent for longer than 90% of the gaps after which users came back (the
  return time most returning users stay within; longer silences rarely end), at least a week;
- *silent* (the floor under ``silent_factor`` x the user's own gap): the 75th percentile.

Cuts are fitted on a batch and stored with its scores (:meth:`StageCuts.to_dict`), so a single
user or the service is staged exactly as that run staged everyone.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churnkit.config import ActivityEvents, SegmentSettings
from churnkit.contracts import as_of_cutoff
from churnkit.errors import ChurnkitError
from churnkit.features.context import daily_table
from churnkit.features.families import attributes, gaps, rfm

STAGES = ("new", "active", "silent", "churned", "recalled")
SINCE, USUAL_GAP, LAST_GAP = rfm.DAYS_SINCE_LAST_ACTIVITY.name, gaps.GAP_MEAN_DAYS.name, gaps.LAST_GAP_DAYS.name
STAGE_COLUMNS = (SINCE, USUAL_GAP, LAST_GAP)
STAGE_AGE = (rfm.DAYS_SINCE_FIRST_ACTIVITY.name, rfm.DAYS_SINCE_FIRST_EVENT.name, attributes.TENURE_DAYS.name)
"""Lifecycle age: the first of these the features have."""

CHURNED_QUANTILE = 0.9
SILENT_QUANTILE = 0.75
MIN_CHURNED_DAYS = 7.0
"""A week: the shortest silence called churned, whatever the rhythm (weekly habits exist)."""
MIN_SILENT_DAYS = 1.0
DEFAULT_CUTS = (7.0, 30.0)
"""(silent, churned) days when there is no gap to learn from (every user active on one day)."""


@dataclass(frozen=True)
class StageCuts:
    """The silent floor and churned cut in days, and where they came from."""

    silent_min_days: float
    churned_days: float
    basis: str
    """``config`` (both set), ``rhythm`` (from ``gaps`` gaps between active days), or
    ``default`` (no gap seen)."""
    gaps: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StageCuts:
        try:
            cuts = cls(float(data["silent_min_days"]), float(data["churned_days"]), str(data["basis"]),
                       int(data.get("gaps", 0)))
        except (KeyError, TypeError, ValueError) as err:
            raise ChurnkitError(f"stored lifecycle cuts are not usable: {err}") from None
        if not 0 <= cuts.silent_min_days < cuts.churned_days:
            raise ChurnkitError(f"stored lifecycle cuts are not usable: {cuts}")
        return cuts

    def describe(self) -> str:
        how = {"config": "as configured", "default": "defaults: no gaps between active days yet"}.get(
            self.basis, f"the data's rhythm, from {self.gaps:,} gaps between active days")
        return f"silent after {self.silent_min_days:g}+ days, churned after {self.churned_days:g} ({how})"


def stage_cuts(settings: SegmentSettings | None, gap_counts: pd.Series | None = None) -> StageCuts:
    """Configured cuts where set; the others from ``gap_counts`` (count of gaps by length in
    days, see :func:`gap_counts`), kept in order (silent floor below the churned cut)."""
    s = settings or SegmentSettings()
    if s.silent_min_days is not None and s.churned_days is not None:
        return StageCuts(s.silent_min_days, s.churned_days, "config")
    counts = gap_counts[gap_counts > 0] if gap_counts is not None else pd.Series(dtype="float64")
    n = int(counts.sum())
    if n:
        days, weight = counts.index.to_numpy("float64"), counts.to_numpy("float64")
        silent, churned = _weighted_quantiles(days, weight, [SILENT_QUANTILE, CHURNED_QUANTILE])
        silent, churned, basis = max(silent, MIN_SILENT_DAYS), max(churned, MIN_CHURNED_DAYS), "rhythm"
    else:
        (silent, churned), basis = DEFAULT_CUTS, "default"
    if s.silent_min_days is not None:  # one cut set: the other one from the data, kept in order
        silent, churned = s.silent_min_days, max(churned, s.silent_min_days + 1)
    elif s.churned_days is not None:
        churned, silent = s.churned_days, min(silent, s.churned_days / 2)
    else:
        silent = min(silent, churned - 1)
    return StageCuts(float(silent), float(churned), basis, n)


def _weighted_quantiles(values: np.ndarray, weights: np.ndarray, qs: Iterable[float]) -> list[float]:
    """The smallest value whose cumulative share reaches each q (a whole number of days)."""
    order = np.argsort(values)
    v, cum = values[order], np.cumsum(weights[order]) / weights.sum()
    return [float(v[min(np.searchsorted(cum, q, side="left"), len(v) - 1)]) for q in qs]


def gap_counts(events: ir.Table, activity: ActivityEvents, as_of: dt.date) -> pd.Series:
    """How many gaps between consecutive active days, by length in days, before ``as_of``
    (the feature code's daily table, so "active" means what it means for the features)."""
    d = daily_table(events, activity.include, activity.exclude)
    d = d.filter((d.day < as_of_cutoff(as_of)) & d.gap_days.notnull())
    df = d.group_by(days=d.gap_days.round()).aggregate(n=d.count()).to_pandas()
    return pd.Series(df["n"].to_numpy("float64"), index=df["days"].to_numpy("float64"), dtype="float64")


def stage_columns_missing(columns: Iterable[str]) -> list[str]:
    """What lifecycle stages need that ``columns`` lack (empty: they work)."""
    have = set(columns)
    return [c for c in STAGE_COLUMNS if c not in have] + ([] if have & set(STAGE_AGE) else [STAGE_AGE[0]])


def lifecycle_stage(df: pd.DataFrame, settings: SegmentSettings | None = None,
                    cuts: StageCuts | None = None) -> pd.Series:
    """new / active / silent / churned / recalled for each row of feature columns.

    First match wins: churned (no activity for the churned cut), new (first active day within
    new_days), recalled (the latest active day ended a gap of at least the churned cut and is
    at most recalled_days ago), silent (quiet for longer than silent_factor x the user's
    typical gap and than the silent floor), else active. "Recalled" only sees a return whose
    first active day is still the latest one: after two active days back the user is active.
    ``cuts`` default to :func:`stage_cuts` of ``settings`` without data (configured or defaults).
    """
    s = settings or SegmentSettings()
    c = cuts or stage_cuts(s)
    missing = stage_columns_missing(df.columns)
    if missing:
        raise ChurnkitError(f"lifecycle stages need features {missing} (rebuild the training set)")
    age_col = next(col for col in STAGE_AGE if col in df.columns)
    since = df[SINCE].to_numpy(dtype="float64")
    age = df[age_col].to_numpy(dtype="float64")
    gap = df[USUAL_GAP].to_numpy(dtype="float64")
    last_gap = df[LAST_GAP].to_numpy(dtype="float64")
    never = np.isnan(since)
    with np.errstate(invalid="ignore"):
        churned = (since >= c.churned_days) | (never & ~(age <= s.new_days))
        new = age <= s.new_days
        recalled = (last_gap >= c.churned_days) & (since <= s.recalled_days)
        limit = np.fmax(s.silent_factor * gap, c.silent_min_days)  # fmax: a missing gap falls back to the floor
        silent = since > limit
    stage = np.select([churned, new, recalled, silent], ["churned", "new", "recalled", "silent"], default="active")
    return pd.Series(stage, index=df.index, name="lifecycle_stage", dtype="object")
