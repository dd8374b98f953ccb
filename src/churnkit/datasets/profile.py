"""The population a model learnt from, feature by feature: quantiles, mean, missing share.

Saved with the model so reasons at scoring time compare a user with that population
("most users: 0"), not with whoever happens to be scored; drift checks start from it too.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Sequence

import numpy as np
import pandas as pd

from churnkit.datasets.manifest import FeatureStats, PopulationProfile
from churnkit.errors import ChurnkitError

PROFILE_VERSION = 2
"""2: adds each feature's range and decile bins (for drift)."""
QUANTILES = {"q10": 0.1, "q25": 0.25, "median": 0.5, "q75": 0.75, "q90": 0.9}
DECILES = np.linspace(0.1, 0.9, 9)


def population_profile(df: pd.DataFrame, names: Sequence[str]) -> PopulationProfile:
    """Quantiles, mean and missing share of each feature in ``names`` over the rows of ``df``."""
    names = list(names)
    missing = [n for n in names if n not in df.columns]
    if missing:
        raise ChurnkitError(f"profile: training data lacks features {missing[:5]}{'...' if len(missing) > 5 else ''}")
    x = df[names].to_numpy(dtype="float64")
    present = ~np.isnan(x)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-missing columns give NaN
        qs = np.nanquantile(x, list(QUANTILES.values()), axis=0) if len(x) else np.full((len(QUANTILES), len(names)), np.nan)
        mean = np.nanmean(x, axis=0)
    share_missing = 1.0 - present.mean(axis=0) if len(x) else np.ones(len(names))
    features = {}
    for j, name in enumerate(names):
        stats = {k: _json_float(qs[i, j]) for i, k in enumerate(QUANTILES)}
        features[name] = FeatureStats(**stats, mean=_json_float(mean[j]), missing_share=float(share_missing[j]),
                                      **_bins(x[present[:, j], j]))
    return PopulationProfile(version=PROFILE_VERSION, rows=len(x), features=features)


def aged(frame: pd.DataFrame, cutoffs: pd.Series, names: Sequence[str], day: dt.date) -> pd.DataFrame:
    """``frame`` with each feature in ``names`` (ones that grow by a day a day: ages) given as
    at ``day`` instead of at its row's cutoff: what each user's age would read then."""
    out = frame.copy()
    if not len(names) or not len(frame):
        return out
    cut = pd.to_datetime(cutoffs, utc=True).dt.tz_localize(None).dt.normalize().to_numpy()
    gap = (np.datetime64(day, "D") - cut.astype("datetime64[D]")).astype("float64")
    for name in names:
        out[name] = out[name].to_numpy("float64") + gap
    return out


def _bins(values: np.ndarray) -> dict[str, object]:
    """Range, distinct decile edges and the share of the values in each bin (see FeatureStats)."""
    if not len(values):
        return {}
    edges = np.unique(np.quantile(values, DECILES))
    shares = np.bincount(bin_index(values, edges), minlength=len(edges) + 1) / len(values)
    return {"low": float(values.min()), "high": float(values.max()), "edges": tuple(float(e) for e in edges),
            "shares": tuple(float(v) for v in shares)}


def bin_index(values: np.ndarray, edges: Sequence[float]) -> np.ndarray:
    """The bin of each value: 0 for ``<= edges[0]``, i for ``(edges[i-1], edges[i]]``, len(edges) above."""
    return np.searchsorted(np.asarray(edges, dtype="float64"), values, side="left")


def _json_float(v: float) -> float | None:
    return None if not np.isfinite(v) else float(v)
