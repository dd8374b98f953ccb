"""One feature definition, two engines: DuckDB and local Spark build the same training set.

Same rows, same columns and dtypes, floats equal to 1e-9, the same data fingerprint. Spark
reads the very Parquet files that ingest wrote, through Ibis's pyspark backend.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from churnkit.config import SimulateSettings, load_problem
from churnkit.datasets.build import build_training_set, features_as_of
from churnkit.io.warehouse import duckdb_connection, workspace_events, workspace_users

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workspace(simulated_workspace):
    return simulated_workspace("ws", SimulateSettings(users=300, days=150, seed=21, horizons=[7]))


def tables(con, ws):
    return workspace_events(con, ws), workspace_users(con, ws)


def assert_same_frames(a: pd.DataFrame, b: pd.DataFrame, keys=("cutoff", "user_id")) -> None:
    assert list(a.columns) == list(b.columns)
    assert dict(a.dtypes.astype(str)) == dict(b.dtypes.astype(str))
    a = a.sort_values(list(keys)).reset_index(drop=True)
    b = b.sort_values(list(keys)).reset_index(drop=True)
    pd.testing.assert_frame_equal(a[list(keys)], b[list(keys)])
    floats = [c for c in a.columns if a[c].dtype == "float64"]
    x, y = a[floats].to_numpy(), b[floats].to_numpy()
    assert (np.isnan(x) == np.isnan(y)).all(), [c for c in floats if (a[c].isna() != b[c].isna()).any()]
    np.testing.assert_allclose(x, y, rtol=0, atol=1e-9, equal_nan=True)


@pytest.mark.parametrize("problem", ["churn_ga4", "revenue_ga4"])
def test_training_set_is_the_same_on_duckdb_and_spark(workspace, spark_backend, problem):
    spec = load_problem(problem)
    d_df, d_man = build_training_set(*tables(duckdb_connection(), workspace), spec)
    s_df, s_man = build_training_set(*tables(spark_backend, workspace), spec)
    assert len(d_df) > 500 and d_df["label"].nunique() > 1
    assert_same_frames(d_df, s_df)
    for key in ("data", "cutoffs", "features", "attribute_levels", "rows"):
        assert getattr(d_man, key) == getattr(s_man, key), key
    # revenue sums may add in another order: equal to rounding, not bit for bit
    for a, b in zip(d_man.per_cutoff, s_man.per_cutoff, strict=True):
        assert (a.cutoff, a.rows) == (b.cutoff, b.rows)
        assert a.label_mean == pytest.approx(b.label_mean, rel=1e-12)


def test_as_of_features_are_the_same_on_duckdb_and_spark(workspace, spark_backend):
    spec = load_problem("purchase_ga4")
    _, manifest = build_training_set(*tables(duckdb_connection(), workspace), spec)
    as_of = manifest.cutoff_dates[-1] + dt.timedelta(days=3)
    d = features_as_of(*tables(duckdb_connection(), workspace), manifest, as_of)
    s = features_as_of(*tables(spark_backend, workspace), manifest, as_of)
    assert len(d) > 50
    assert_same_frames(d, s)
