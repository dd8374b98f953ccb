"""Has the scored population moved away from the one a model was judged on? Per feature.

The reference is a profile saved with the model (:class:`~churnkit.datasets.manifest.
PopulationProfile`: ranges and decile bins), so no training data is kept or read: the
features of the model's test rows, the latest population it was judged on
(``Manifest.drift_reference``).
Features that grow by a day a day for everyone (ages: ``FeatureSpec.ages``) are compared
after subtracting the days since that reference, over the users who were there then, so a
population merely growing older does not read as drift. Per feature:

- **PSI** (population stability index) over the training deciles:
  ``sum((now - then) * ln(now / then))`` with both shares floored at 1e-4. The usual reading:
  below 0.1 stable, 0.1-0.25 a moderate move, above 0.25 a large one.
- **Chi-square** goodness of fit of the scored counts in those bins against the training
  shares: whether the move is beyond sampling noise. With many users a tiny move is
  "significant", so a feature is flagged for its distribution only when both the PSI is
  above its threshold and the p-value below its own.
- **Missing share** now against then: an upstream field that breaks shows here first.
- **Share moved**: the largest change of one bin's share. PSI understates moves in
  features with few distinct values (a 0/1 flag going from 19% to 30% of users has a PSI
  of 0.07), so a bin moving by more than ``share_change`` flags too, p-value permitting.
- **Out of range**: the share of values below the smallest or above the largest value seen
  in training (a unit change, a doubled count).
- **Broken**: the missing share jumped, or most values left the range: the upstream field
  is the first suspect (``broken``), rather than the population.
- A feature with one value for every user in the reference and now (a calendar value such
  as days since a campaign sent to everyone) says nothing about the population: not judged.

The same test serves a model's score: its reference is the model's scores on its own test
rows (``Manifest.score_profile``). Pure: frames in, a table out. Thresholds come from the
project's ``monitor:`` settings (:class:`~churnkit.config.MonitorSettings`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from churnkit.config import MonitorSettings
from churnkit.datasets.manifest import FeatureStats, PopulationProfile
from churnkit.datasets.profile import bin_index
from churnkit.errors import ChurnkitError
from churnkit.metrics import mean_abs_shap

DEFAULTS = MonitorSettings()
FLOOR = 1e-4
"""Shares below this are read as this in PSI: an empty bin would make it infinite."""


COLUMNS = ("feature", "psi", "p_value", "share_change", "missing_then", "missing_now", "out_of_range", "rows",
           "drifted", "broken", "why", "driver_rank")
BROKEN_OUT_OF_RANGE = 0.5
"""More than this share outside the reference range reads as a broken field (a unit change)."""


def psi(expected: Sequence[float], actual: Sequence[float], floor: float = FLOOR) -> float:
    """Population stability index of ``actual`` shares against ``expected`` (same bins)."""
    e = np.maximum(np.asarray(expected, dtype="float64"), floor)
    a = np.maximum(np.asarray(actual, dtype="float64"), floor)
    if e.shape != a.shape:
        raise ChurnkitError(f"psi: {e.size} expected shares but {a.size} actual ones")
    return float(np.sum((a - e) * np.log(a / e)))


def one_feature(name: str, ref: FeatureStats, values: np.ndarray,
                thresholds: MonitorSettings = DEFAULTS, age: bool = False) -> dict[str, object]:
    """The drift row of one feature (see the module doc); ``age``: values are ages taken
    back to the reference's date, and the users who arrived since (negative then) are left
    out: the reference could not hold them, and who arrives is other features' business."""
    v = np.asarray(values, dtype="float64")
    present = v[~np.isnan(v)]
    missing_now = 1.0 - present.size / v.size if v.size else float("nan")
    if age:  # users who arrived since the reference: below zero once aged back, not in it
        present = present[present >= 0]
    row: dict[str, object] = {"feature": name, "psi": np.nan, "p_value": np.nan, "share_change": np.nan,
                              "missing_then": ref.missing_share, "missing_now": missing_now, "out_of_range": np.nan,
                              "rows": int(v.size), "drifted": False, "broken": False, "why": "",
                              "driver_rank": np.nan}
    if ref.low is not None and ref.low == ref.high and present.size and np.ptp(present) == 0:
        row["why"] = "one value for every user then and now (a calendar value): not judged"
        return row
    why = []
    if ref.edges and present.size:
        counts = np.bincount(bin_index(present, ref.edges), minlength=len(ref.edges) + 1)
        expected = np.asarray(ref.shares, dtype="float64")
        now = counts / present.size
        row["psi"] = psi(expected, now)
        moved = np.abs(now - expected)
        row["share_change"] = float(moved.max())
        f_exp = np.maximum(expected, FLOOR)
        row["p_value"] = float(stats.chisquare(counts, f_exp / f_exp.sum() * present.size).pvalue) \
            if len(counts) > 1 else 1.0
        if row["p_value"] < thresholds.p_value:
            if row["psi"] > thresholds.psi:
                why.append(f"distribution moved (PSI {row['psi']:.2f})")
            elif row["share_change"] > thresholds.share_change:
                k = int(moved.argmax())
                why.append(f"share {_bin_text(ref.edges, k)} moved {expected[k]:.0%} -> {now[k]:.0%}")
    if ref.low is not None and ref.high is not None and present.size:
        row["out_of_range"] = float(np.mean((present < ref.low) | (present > ref.high)))
        if row["out_of_range"] > thresholds.out_of_range:
            why.append(f"{row['out_of_range']:.0%} outside the reference range [{ref.low:g}, {ref.high:g}]")
    jumped = bool(v.size and missing_now - ref.missing_share > thresholds.missing_increase)
    if jumped:
        why.append(f"missing {ref.missing_share:.0%} -> {missing_now:.0%}")
    row["drifted"] = bool(why)
    row["broken"] = jumped or bool(np.nan_to_num(row["out_of_range"]) > BROKEN_OUT_OF_RANGE)
    row["why"] = "; ".join(why)
    return row


def _bin_text(edges: Sequence[float], k: int) -> str:
    """A bin of ``bin_index`` in words: ``<= 0``, ``in (0, 3]``, ``> 12``."""
    if k == 0:
        return f"<= {edges[0]:g}"
    if k == len(edges):
        return f"> {edges[-1]:g}"
    return f"in ({edges[k - 1]:g}, {edges[k]:g}]"


def feature_drift(profile: PopulationProfile, current: pd.DataFrame, names: Sequence[str] | None = None,
                  drivers: Sequence[str] = (), thresholds: MonitorSettings = DEFAULTS,
                  aged: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per feature of ``profile`` (or ``names``) present in ``current``: PSI, the
    chi-square p-value, missing shares then and now, out-of-range share, whether it drifted
    and why; the largest PSI first. Profiles written before version 2 have no bins: their
    rows carry missing shares only. ``drivers`` (the model's most important features, most
    important first) gives ``driver_rank``. ``aged``: features that age, with the days
    between the reference and ``current``, taken off before comparing."""
    names = list(names if names is not None else profile.features)
    unknown = [n for n in names if n not in profile.features]
    if unknown:
        raise ChurnkitError(f"drift: the training profile has no feature {unknown[0]!r}")
    absent = [n for n in names if n not in current.columns]
    if absent:
        raise ChurnkitError(f"drift: the scored rows lack feature {absent[0]!r}")
    back = aged or {}
    rows = [one_feature(n, profile.features[n], current[n].to_numpy("float64") - back.get(n, 0.0), thresholds,
                        age=n in back) for n in names]
    out = pd.DataFrame(rows, columns=list(COLUMNS))
    rank = {name: i + 1 for i, name in enumerate(drivers)}
    out["driver_rank"] = out["feature"].map(rank).astype("float64")
    return out.sort_values(["drifted", "psi"], ascending=[False, False], na_position="last",
                           kind="mergesort").reset_index(drop=True)


def drifted_drivers(table: pd.DataFrame) -> list[str]:
    """The drifted features among the model's drivers, most important first."""
    hit = table[table["drifted"] & table["driver_rank"].notna()].sort_values("driver_rank")
    return hit["feature"].tolist()


def top_drivers(contributions: pd.DataFrame, top: int) -> list[str]:
    """The ``top`` features with a non-zero mean |SHAP| (:func:`churnkit.metrics.mean_abs_shap`),
    most important first: what makes a feature's drift matter."""
    ranked = mean_abs_shap(contributions)
    return ranked[ranked > 0].head(top).index.tolist()
