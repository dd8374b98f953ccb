"""Real data: the RFM family reproduces the published CDNOW per-customer summary.

The BTYD literature summarises the 2,357-customer sample at the end of the 39-week
calibration period (1997-09-30) as x (repeat purchase days), t_x (weeks from the first to
the last purchase), T (weeks from the first purchase to the end) and zbar (mean spend per
repeat purchase day), with same-day purchases merged. Our features at cutoff 1997-10-01
are the same quantities in days: x exactly, t_x and T to the published two decimals in
weeks, zbar to the cent.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from churnkit.config import ActivityEvents, FeatureSelection, IngestSettings, load_source
from churnkit.events.ingest import ingest
from churnkit.features.build import feature_frame
from churnkit.features.context import cutoff_table
from churnkit.io.warehouse import duckdb_connection, workspace_events
from churnkit.io.workspace import Workspace

CUTOFF = dt.date(1997, 10, 1)


@pytest.fixture(scope="module")
def features(cdnow_dir, tmp_path_factory) -> pd.DataFrame:
    ws = Workspace(tmp_path_factory.mktemp("cdnow"))
    ingest([cdnow_dir / "CDNOW_sample.txt"], load_source("cdnow_sample"), ws, as_of=None, settings=IngestSettings())
    ff = feature_frame(
        workspace_events(duckdb_connection(), ws),
        cutoff_table([CUTOFF]),
        None,
        selection=FeatureSelection(families=["rfm"]),
        activity=ActivityEvents(),
        attribute_levels=None,
    )
    return ff.table.to_pandas()


@pytest.fixture(scope="module")
def published(cdnow_dir) -> pd.DataFrame:
    summary = pd.read_csv(cdnow_dir / "cdnow_customers_summary_with_transactions.csv")
    # the sample's second column is the 1..2357 index the summary calls ID
    raw = pd.read_csv(cdnow_dir / "CDNOW_sample.txt", sep=r"\s+", header=None, dtype=str,
                      names=["customer_id", "sample_id", "date", "cds", "dollars"])
    ids = raw[["customer_id", "sample_id"]].drop_duplicates().astype({"sample_id": int})
    return summary.merge(ids, left_on="ID", right_on="sample_id", validate="one_to_one")


def test_every_customer_has_a_row(features, published):
    assert len(published) == 2357
    assert set(features.user_id) == set(published.customer_id)
    assert (features.cutoff.dt.date == CUTOFF).all()


def test_x_t_x_and_T_match_the_published_summary(features, published):
    m = published.merge(features, left_on="customer_id", right_on="user_id", validate="one_to_one")
    np.testing.assert_array_equal(m.clv_frequency.to_numpy(), m.x.to_numpy())
    np.testing.assert_array_equal((m.clv_recency_days / 7).round(2).to_numpy(), m.t_x.to_numpy())
    np.testing.assert_array_equal((m.clv_age_days / 7).round(2).to_numpy(), m["T"].to_numpy())
    # whole days: the weekly figures are days / 7
    assert (m.clv_age_days % 1 == 0).all() and (m.clv_recency_days % 1 == 0).all()
    assert m.x.sum() == 2457  # repeat transactions in weeks 1-39, same-day purchases merged


def test_zbar_matches_to_the_cent(features, published):
    m = published.merge(features, left_on="customer_id", right_on="user_id", validate="one_to_one")
    zbar = m.clv_monetary.fillna(0.0)
    # the summary rounds to cents: half a cent (plus float noise) is the most it can differ
    assert np.abs(zbar - m.zbar).max() <= 0.005 + 1e-9
    assert (m.loc[m.x == 0, "clv_monetary"].isna() | (m.loc[m.x == 0, "clv_monetary"] == 0)).all()
