"""Features with nothing to learn from (constant or all-null) leave the training set at build,
say so in the manifest, and the scoring paths follow the manifest's features."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnkit.config import load_problem
from churnkit.datasets.build import (
    build_training_set,
    features_as_of,
    scoring_features,
    uninformative,
)
from churnkit.datasets.manifest import Manifest
from churnkit.errors import ChurnkitError
from churnkit.features.build import ELIGIBILITY_COLUMNS
from churnkit.io.warehouse import events_memtable


@pytest.fixture(scope="module")
def purchase_only():
    """A log of purchases and nothing else (no sessions, pushes, campaigns, categories)."""
    rng = np.random.default_rng(0)
    n = 3000
    events = pd.DataFrame({
        "user_id": [f"c{i}" for i in rng.integers(0, 300, n)],
        "ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.to_timedelta(rng.uniform(0, 200, n), unit="D"),
        "event": "purchase",
        "amount": rng.gamma(2.0, 20.0, n),
    })
    table = events_memtable(events)
    df, manifest = build_training_set(table, None, load_problem("churn_30"))
    return table, df, manifest


def test_constant_and_all_null_features_are_dropped_with_their_reason(purchase_only):
    _, df, manifest = purchase_only
    dropped = {d.name: d.reason for d in manifest.dropped_features}
    assert dropped["n_session_30d"] == "constant 0" and dropped["push_open_rate_30d"] == "all null"
    assert len(dropped) > 30 and len(manifest.features) > 20  # most of a 75-feature set says nothing here
    names = manifest.feature_names
    assert not set(dropped) & set(names)
    # the table keeps every computed column: a model from before the drop still rescores on it
    assert set(df.columns) == {"user_id", "cutoff", "label", *names, *dropped}
    for name in names:  # every kept feature varies, or holds nulls beside values
        col = df[name]
        assert col.nunique() > 1 or col.isna().any(), name
    again = Manifest.from_dict(json.loads(manifest.to_json()), "again")
    assert again.dropped_features == manifest.dropped_features


def test_scoring_paths_give_exactly_the_model_features(purchase_only):
    table, df, manifest = purchase_only
    cutoff = manifest.cutoff_dates[-1]
    batch = features_as_of(table, None, manifest, cutoff)
    assert list(batch.columns) == ["user_id", "cutoff", *manifest.feature_names]
    rows = df[df.cutoff.dt.date == cutoff].sort_values("user_id").reset_index(drop=True)
    np.testing.assert_allclose(batch[manifest.feature_names].to_numpy(), rows[manifest.feature_names].to_numpy())
    scored = scoring_features(table, None, manifest, cutoff)
    extra = [c for c in ELIGIBILITY_COLUMNS if c not in manifest.feature_names]
    assert list(scored.columns) == ["user_id", "cutoff", *manifest.feature_names, *extra]


def test_manifest_tells_its_computed_features_from_others(purchase_only):
    _, _, manifest = purchase_only
    computed = [*manifest.feature_names, *(d.name for d in manifest.dropped_features)]
    assert manifest.kept(computed) == manifest.feature_names
    assert manifest.kept([*computed, "new_feature"]) is None  # feature code changed: rebuild
    assert manifest.kept(manifest.feature_names) is None  # a dropped one is no longer computed
    bogus = manifest.model_copy(update={"dropped_features": ()})
    with pytest.raises(ChurnkitError, match=r"features differ from the manifest: missing \[\], extra \[.*n_session_30d"):
        features_as_of(purchase_only[0], None, bogus, manifest.cutoff_dates[-1])


def test_a_column_with_one_value_and_some_nulls_is_kept():
    df = pd.DataFrame({"one": [1.0, 1.0, np.nan], "const": [2.0, 2.0, 2.0], "null": [np.nan] * 3,
                       "varies": [1.0, 2.0, 3.0]})
    assert uninformative(df, list(df.columns)) == {"const": "constant 2", "null": "all null"}
    assert uninformative(df.iloc[:0], list(df.columns)) == {}
