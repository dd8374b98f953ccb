"""The manifest: what a training set holds, written beside it and stored with every model.

Typed and frozen: training adds what scoring needs (the population profile, the plan, the
test metrics) by making a new manifest (:meth:`Manifest.with_model`), never by editing one,
and every reader gets attributes, not string keys.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

from pydantic import BaseModel, ConfigDict

from churnkit.config import ProblemConfig
from churnkit.errors import ChurnkitError


class _Stored(BaseModel):
    """Written by churnkit and read back, possibly by a newer version: unknown keys are
    ignored, so an older model keeps loading."""

    model_config = ConfigDict(extra="ignore", frozen=True)


class FeatureEntry(_Stored):
    """One feature column (see ``FeatureSpec.to_dict``)."""

    name: str
    description: str = ""
    unit: str = ""
    family: str = ""
    dtype: str = "float64"
    ages: bool = False
    """Grows by one a day for every user (see ``FeatureSpec.ages``)."""


class DroppedFeature(_Stored):
    """A feature the build computed and left out: the same value (or null) on every row."""

    name: str
    reason: str


class LabelInfo(_Stored):
    name: str
    kind: str
    horizon_days: int


class DataInfo(_Stored):
    """The event data a training set was built from: its fingerprint and data end."""

    rows: int
    users: int
    first_ts: str | None
    last_ts: str | None
    digest: int
    end_exclusive: str

    def fingerprint(self) -> dict[str, Any]:
        return self.model_dump(exclude={"end_exclusive"})


class CutoffStats(_Stored):
    cutoff: str
    rows: int
    label_mean: float


class FeatureStats(_Stored):
    q10: float | None = None
    q25: float | None = None
    median: float | None = None
    q75: float | None = None
    q90: float | None = None
    mean: float | None = None
    missing_share: float = 0.0
    low: float | None = None
    """The smallest and largest value seen in training (``high``): what "out of range" means."""
    high: float | None = None
    edges: tuple[float, ...] = ()
    """Distinct decile cut points of the values seen in training; with ``shares`` (the share
    of those values in ``(-inf, e1], (e1, e2], ..., (ek, inf)``) the distribution drift checks
    compare a scored population with. Ties are exact: a feature that is 0 for 80% of users
    has a first bin of share 0.8. Empty in profiles written before version 2."""
    shares: tuple[float, ...] = ()


class PopulationProfile(_Stored):
    """Quantiles, mean and missing share per feature of the rows a model learnt from."""

    version: int = 1
    rows: int = 0
    features: dict[str, FeatureStats] = {}

    def medians(self) -> dict[str, float | None]:
        return {name: s.median for name, s in self.features.items()}


class Manifest(_Stored):
    """A training set's description; with a model's parts once training adds them."""

    churnkit_version: str
    created_at: str
    problem: ProblemConfig
    label: LabelInfo
    keys: tuple[str, ...]
    features: tuple[FeatureEntry, ...]
    dropped_features: tuple[DroppedFeature, ...] = ()
    """Computed but constant or all-null over the training set: not model inputs."""
    attribute_levels: dict[str, list[str]] = {}
    cutoffs: tuple[str, ...]
    data: DataInfo
    rows: int
    per_cutoff: tuple[CutoffStats, ...] = ()
    # what training adds for scoring
    population_profile: PopulationProfile | None = None
    plan: dict[str, Any] | None = None
    test_metrics: dict[str, dict[str, float]] | None = None
    best_params: dict[str, Any] | None = None
    reference_profile: PopulationProfile | None = None
    """The features of the model's test rows (out-of-sample, the latest population it was
    judged on), ages given as at ``reference_cutoff`` (the last test cutoff): what drift is
    measured against. None for models trained before monitoring (drift then falls back to
    the training profile, unaged)."""
    reference_cutoff: str | None = None
    score_profile: FeatureStats | None = None
    """The model's scores on its own test rows (range, decile bins): what score drift is
    measured against. None for models trained before monitoring."""

    @property
    def feature_names(self) -> list[str]:
        """The feature columns, in order."""
        return [f.name for f in self.features]

    def kept(self, computed: list[str]) -> list[str] | None:
        """The model's features among the ``computed`` columns (in order), or None when
        they are not this manifest's: features plus dropped ones, as the build saw them."""
        dropped = {d.name for d in self.dropped_features}
        kept = [n for n in computed if n not in dropped]
        return kept if kept == self.feature_names and dropped <= set(computed) else None

    @property
    def profile(self) -> PopulationProfile:
        return self.population_profile or PopulationProfile()

    @property
    def cutoff_dates(self) -> list[dt.date]:
        return [dt.date.fromisoformat(c) for c in self.cutoffs]

    def with_model(self, *, profile: PopulationProfile, plan: dict[str, Any],
                   test_metrics: dict[str, dict[str, float]], best_params: dict[str, Any],
                   score_profile: FeatureStats | None = None, reference_profile: PopulationProfile | None = None,
                   reference_cutoff: str | None = None) -> Manifest:
        """This manifest plus what scoring and monitoring need from training."""
        return self.model_copy(update={"population_profile": profile, "plan": plan, "test_metrics": test_metrics,
                                       "best_params": best_params, "score_profile": score_profile,
                                       "reference_profile": reference_profile, "reference_cutoff": reference_cutoff})

    @property
    def ageing(self) -> list[str]:
        """The features that grow by one a day for every user."""
        return [f.name for f in self.features if f.ages]

    def drift_reference(self) -> tuple[PopulationProfile, dt.date | None]:
        """What drift compares a scored population with, and the date its ages are given at:
        the reference profile, or (models from before it) the training profile, unaged."""
        if self.reference_profile is not None and self.reference_cutoff:
            return self.reference_profile, dt.date.fromisoformat(self.reference_cutoff)
        return self.profile, None

    def to_json(self) -> str:
        # json.dumps, not model_dump_json: NaN metrics stay NaN, as every stored manifest has them
        return json.dumps(self.model_dump(mode="json"), indent=2)

    @classmethod
    def from_dict(cls, data: Any, where: str) -> Manifest:
        """A stored manifest, or a one-line error naming what is missing."""
        try:
            return cls.model_validate(data)
        except Exception as err:  # noqa: BLE001 - pydantic, or a malformed store
            first = str(err).splitlines()
            detail = f"{first[0]} {first[1].strip() if len(first) > 1 else ''}".strip()
            raise ChurnkitError(f"{where}: its feature manifest is not usable ({detail})") from None
