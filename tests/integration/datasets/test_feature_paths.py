"""One feature definition: batch (workspace Parquet) and in-memory single-user paths agree."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from churnkit.config import SimulateSettings, load_problem
from churnkit.datasets.build import build_training_set, features_as_of, scoring_features
from churnkit.io.warehouse import (
    duckdb_connection,
    events_memtable,
    users_memtable,
    workspace_events,
    workspace_users,
)
from churnkit.scoring.scorer import in_population


def features_for_events(events: pd.DataFrame, users: pd.DataFrame, manifest, as_of: dt.date) -> pd.DataFrame:
    """Events held in memory (one user's log, as the service gets it): the same function."""
    return features_as_of(events_memtable(events), users_memtable(users), manifest, as_of)


@pytest.fixture(scope="module")
def workspace(simulated_workspace):
    return simulated_workspace("ws", SimulateSettings(users=400, days=150, seed=21, horizons=[7]))


def test_single_user_in_memory_equals_batch(workspace):
    con = duckdb_connection()
    events, users = workspace_events(con, workspace), workspace_users(con, workspace)
    _, manifest = build_training_set(events, users, load_problem("churn_ga4"))
    as_of = manifest.cutoff_dates[-1]
    batch = features_as_of(events, users, manifest, as_of)
    names = manifest.feature_names
    assert len(batch) > 20
    ev, us = events.to_pandas(), users.to_pandas()
    for uid in batch.user_id.sample(8, random_state=0):
        one = features_for_events(ev[ev.user_id == uid], us[us.user_id == uid], manifest, as_of)
        assert len(one) == 1
        np.testing.assert_allclose(
            one[names].to_numpy(), batch.loc[batch.user_id == uid, names].to_numpy(), rtol=0, atol=1e-12
        )
        # events at or after the as-of date change nothing
        mine = ev[ev.user_id == uid]
        later = mine.assign(ts=pd.Timestamp(as_of, tz="UTC") + pd.Timedelta(hours=5))
        both = features_for_events(pd.concat([mine, later]), us[us.user_id == uid], manifest, as_of)
        np.testing.assert_allclose(both[names].to_numpy(), one[names].to_numpy(), rtol=0, atol=1e-12)


def test_as_of_features_training_columns_match(workspace):
    con = duckdb_connection()
    events, users = workspace_events(con, workspace), workspace_users(con, workspace)
    df, manifest = build_training_set(events, users, load_problem("purchase_ga4"))
    cutoff = manifest.cutoff_dates[-1]
    batch = features_as_of(events, users, manifest, cutoff)
    names = manifest.feature_names
    train_rows = df[df.cutoff.dt.date == cutoff].sort_values("user_id").reset_index(drop=True)
    assert list(batch.user_id) == list(train_rows.user_id)
    np.testing.assert_allclose(batch[names].to_numpy(), train_rows[names].to_numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize("problem", ["churn_ga4", "purchase_ga4"])
def test_scoring_flags_exactly_the_users_training_would_keep(workspace, problem):
    """One eligibility rule: at a cutoff, the users scoring marks as in the model's population
    are the rows the training set holds there, no more and no fewer."""
    con = duckdb_connection()
    events, users = workspace_events(con, workspace), workspace_users(con, workspace)
    _, manifest = build_training_set(events, users, load_problem(problem))
    for cutoff in manifest.cutoff_dates[-2:]:
        trained_on = features_as_of(events, users, manifest, cutoff)
        scored = scoring_features(events, users, manifest, cutoff)
        inside = in_population(scored, manifest.problem).to_numpy(bool)
        assert len(scored) > len(trained_on) > 20  # scoring reaches silent users too
        assert set(scored.user_id[inside]) == set(trained_on.user_id)
