"""Feature rows leave the engine as Ibis would hand them over, with floats as float64 and
no infinity, without Ibis's detour through Python lists for columns holding nulls."""

from __future__ import annotations

import datetime as dt

import ibis
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from churnkit.datasets.build import CUTOFF_DTYPE, _to_pandas


def _ibis_way(table, float_columns: list[str], order: list[str]) -> pd.DataFrame:
    """What the rows were before: Ibis's own conversion, then float64 without infinity."""
    df = table.order_by(order).to_pandas()
    values = df[float_columns].to_numpy("float64")
    df[float_columns] = np.where(np.isinf(values), np.nan, values)
    df["cutoff"] = df["cutoff"].astype(CUTOFF_DTYPE)
    return df


@pytest.fixture
def rows() -> ibis.Table:
    rng = np.random.default_rng(7)
    n = 5_000
    day = dt.datetime(2024, 3, 1, tzinfo=dt.UTC)
    floats = rng.normal(size=n)
    floats[rng.random(n) < 0.1] = np.inf
    floats[rng.random(n) < 0.1] = -np.inf
    table = pa.table({
        "user_id": pa.array([f"u{i:05d}" for i in rng.permutation(n)]),
        "cutoff": pa.array([day + dt.timedelta(days=int(d)) for d in rng.integers(0, 3, n)],
                           pa.timestamp("us", "UTC")),
        "with_nulls": pa.array([None if m else v for m, v in zip(rng.random(n) < 0.3, floats)], pa.float64()),
        "no_nulls": pa.array(floats, pa.float64()),
        "count": pa.array([None if m else int(v) for m, v in zip(rng.random(n) < 0.2, rng.integers(0, 9, n))],
                          pa.int64()),
        "flag": pa.array([None if m else bool(v) for m, v in zip(rng.random(n) < 0.2, rng.random(n) < 0.5)]),
        "all_null": pa.array([None] * n, pa.float64()),
    })
    return ibis.memtable(table)


FLOATS = ["with_nulls", "no_nulls", "count", "flag", "all_null"]


@pytest.mark.parametrize("order", [["user_id"], ["cutoff", "user_id"]])
def test_rows_equal_ibis_conversion(rows, order):
    got = _to_pandas(rows, FLOATS, order)
    pd.testing.assert_frame_equal(got, _ibis_way(rows, FLOATS, order), check_exact=True)
    assert list(got.columns) == ["user_id", "cutoff", *FLOATS]
    assert (got[FLOATS].dtypes == "float64").all()
    assert not np.isinf(got[FLOATS].to_numpy()).any()


def test_no_rows(rows):
    empty = rows.filter(rows.user_id == "nobody")
    got = _to_pandas(empty, FLOATS, ["user_id"])
    assert got.empty and list(got.columns) == ["user_id", "cutoff", *FLOATS]
    pd.testing.assert_frame_equal(got, _ibis_way(empty, FLOATS, ["user_id"]), check_exact=True)
