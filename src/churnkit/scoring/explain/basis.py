"""What reasons compare a user with: the population being scored, not the training data.

Two things are learnt from the users a batch explains and kept with its scores:

- *medians*: "(most users: 3)" is what most users scored today have;
- *facts that coincide on this data*: on a purchase-only log every active day is a purchase
  day, so "no activity for 40 days" and "no purchase for 40 days" state one fact, as do
  "first active 305 days ago" and "first purchase 304 days ago". Features that are equal
  (days: within a day) on nearly every row where either says anything are merged into one
  fact, so each reason states a different thing. On a log where they differ they stay apart.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnkit.datasets.profile import population_profile
from churnkit.errors import ChurnkitError

SAME_SHARE = 0.99
"""Share of the informative rows (either value present and not 0) on which two features must agree."""
MIN_ROWS = 20
"""Fewer informative rows than this say nothing about two features being one fact."""
DAY_TOLERANCE = 1.0
"""Two day counts within a day of each other state the same time (midnight cutoffs, signup times)."""
SAMPLE_ROWS = 20_000
UNMERGED_UNITS = ("indicator",)
"""One-hot levels speak for their attribute; they are never merged with other facts."""


@dataclass(frozen=True)
class ReasonBasis:
    """Medians of the explained users' features and the groups of features that state one fact."""

    rows: int
    medians: dict[str, float | None]
    same_fact: tuple[tuple[str, ...], ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {"rows": self.rows, "medians": self.medians, "same_fact": [list(g) for g in self.same_fact]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ReasonBasis:
        try:
            medians = {str(k): None if v is None else float(v) for k, v in dict(data["medians"]).items()}
            groups = tuple(tuple(str(n) for n in g) for g in data.get("same_fact", ()))
            return cls(int(data["rows"]), medians, groups)
        except (KeyError, TypeError, ValueError) as err:
            raise ChurnkitError(f"stored reason basis is not usable: {err}") from None


def reason_basis(X: pd.DataFrame, names: Sequence[str], units: Mapping[str, str], seed: int = 0) -> ReasonBasis:
    """The basis from the feature rows of the users to explain (``units`` by feature name)."""
    names = list(names)
    sample = X[names].sample(SAMPLE_ROWS, random_state=seed) if len(X) > SAMPLE_ROWS else X[names]
    return ReasonBasis(len(X), population_profile(X, names).medians(), coinciding(sample, units))


def coinciding(X: pd.DataFrame, units: Mapping[str, str]) -> tuple[tuple[str, ...], ...]:
    """Groups of columns that agree on at least :data:`SAME_SHARE` of the rows where either is
    present and not zero (joined transitively), in column order."""
    names = [c for c in X.columns if units.get(c) not in UNMERGED_UNITS]
    x = X[names].to_numpy("float64")
    informative = ~np.isnan(x) & (x != 0)
    counts = informative.sum(axis=0)
    parent = list(range(len(names)))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for j in range(len(names)):
        if counts[j] < MIN_ROWS:
            continue
        for k in range(j + 1, len(names)):
            # disagreeing on which rows say anything already rules most pairs out
            if counts[k] < MIN_ROWS or abs(int(counts[j]) - int(counts[k])) > (1 - SAME_SHARE) * max(counts[j], counts[k]):
                continue
            rows = informative[:, j] | informative[:, k]
            a, b = x[rows, j], x[rows, k]
            days = units.get(names[j]) == units.get(names[k]) == "days"
            tol = DAY_TOLERANCE if days else 1e-9 * np.maximum(1.0, np.abs(a))
            with np.errstate(invalid="ignore"):
                same = np.abs(a - b) <= tol
            if same.mean() >= SAME_SHARE:
                parent[root(k)] = root(j)
    groups: dict[int, list[str]] = {}
    for i, name in enumerate(names):
        groups.setdefault(root(i), []).append(name)
    return tuple(tuple(g) for g in groups.values() if len(g) > 1)
