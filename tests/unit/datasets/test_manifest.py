"""The manifest is typed, frozen and reads back what it wrote (old stored ones included)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from churnkit.config import load_problem
from churnkit.datasets.manifest import Manifest, PopulationProfile
from churnkit.errors import ChurnkitError

STORED = {  # a training-set manifest as earlier versions wrote it (problem without typed blocks)
    "churnkit_version": "0.1.0",
    "created_at": "2026-11-01T00:00:00+00:00",
    "problem": {"name": "churn_ga4", "kind": "churn", "lookback_days": 7, "horizon_days": 7, "model": {},
                "tuning": {}},
    "label": {"name": "label", "kind": "churn", "horizon_days": 7},
    "keys": ["user_id", "cutoff"],
    "features": [{"name": "days_since_last_activity", "description": "days since the last activity",
                  "unit": "days", "family": "rfm", "dtype": "float64"}],
    "attribute_levels": {"platform": ["android", "ios"]},
    "cutoffs": ["2024-03-04", "2024-03-11"],
    "data": {"rows": 10, "users": 3, "first_ts": "2024-01-01T00:00:00+00:00",
             "last_ts": "2024-03-20T00:00:00+00:00", "digest": 7, "end_exclusive": "2024-03-21"},
    "rows": 4,
    "per_cutoff": [{"cutoff": "2024-03-04", "rows": 2, "label_mean": 0.5}],
    "test_metrics": {"model": {"roc_auc": float("nan")}},
}


def test_reads_a_stored_manifest_and_writes_it_back_the_same():
    m = Manifest.from_dict(json.loads(json.dumps(STORED)), "stored")
    assert m.feature_names == ["days_since_last_activity"]
    assert m.problem == load_problem("churn_ga4").model_copy(update={"description": "", "cutoffs": m.problem.cutoffs,
                                                                     "features": m.problem.features})
    assert m.data.fingerprint() == {k: v for k, v in STORED["data"].items() if k != "end_exclusive"}
    assert [str(d) for d in m.cutoff_dates] == STORED["cutoffs"]
    again = Manifest.from_dict(json.loads(m.to_json()), "again")
    assert again == m.model_copy(update={"test_metrics": again.test_metrics})
    assert again.test_metrics["model"]["roc_auc"] != again.test_metrics["model"]["roc_auc"]  # NaN survives


def test_training_adds_to_a_new_manifest_never_to_the_old():
    m = Manifest.from_dict(STORED, "stored")
    profile = PopulationProfile(rows=4, features={"days_since_last_activity": {"median": 2.0}})
    with_model = m.with_model(profile=profile, plan={"test": ["2024-03-11"]}, test_metrics={}, best_params={"a": 1})
    assert m.population_profile is None and m.profile.features == {}
    assert with_model.profile.medians() == {"days_since_last_activity": 2.0}
    with pytest.raises(ValidationError):  # frozen
        m.rows = 5  # type: ignore[misc]


def test_an_unusable_manifest_is_one_line_naming_the_model():
    with pytest.raises(ChurnkitError) as err:
        Manifest.from_dict({"features": []}, "churn model churnkit-x v3")
    assert str(err.value).startswith("churn model churnkit-x v3: its feature manifest is not usable")
    assert "\n" not in str(err.value)
