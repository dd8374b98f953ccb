"""``last_gap_days``: days between the last two active days before each cutoff, by hand."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from churnkit.config import ActivityEvents, FeatureSelection
from churnkit.features.build import feature_frame
from churnkit.features.context import cutoff_table
from churnkit.io.warehouse import events_memtable

CUTOFFS = [dt.date(2024, 3, 5), dt.date(2024, 3, 10), dt.date(2024, 3, 20)]


def _events() -> pd.DataFrame:
    rows = [
        # a: active 1, 2 (twice), 4 and 9 March; a push_sent (not activity) on 15 March
        ("a", "2024-03-01 10:00", "session"),
        ("a", "2024-03-02 08:00", "session"),
        ("a", "2024-03-02 23:59", "view"),
        ("a", "2024-03-04 12:00", "session"),
        ("a", "2024-03-09 23:30", "session"),
        ("a", "2024-03-15 09:00", "push_sent"),
        # b: one active day only before the first two cutoffs, back after a 15-day gap
        ("b", "2024-03-03 00:00", "session"),
        ("b", "2024-03-18 07:00", "purchase"),
        # c: an event exactly at a cutoff belongs to the next one
        ("c", "2024-03-01 12:00", "session"),
        ("c", "2024-03-10 00:00", "session"),
    ]
    df = pd.DataFrame(rows, columns=["user_id", "ts", "event"])
    df["ts"] = pd.to_datetime(df["ts"]).dt.tz_localize("UTC")
    df["amount"] = np.where(df.event == "purchase", 10.0, np.nan)
    return df


def test_last_gap_days_by_hand():
    ff = feature_frame(
        events_memtable(_events()),
        cutoff_table(CUTOFFS),
        None,
        selection=FeatureSelection(families=["rfm", "gaps"]),
        activity=ActivityEvents(),
        attribute_levels=None,
    )
    assert "last_gap_days" in ff.names
    spec = next(s for s in ff.specs if s.name == "last_gap_days")
    assert (spec.description, spec.unit) == ("days between the last two active days", "days")
    df = ff.table.to_pandas()
    got = {(r.user_id, r.cutoff.date().isoformat()): r.last_gap_days for r in df.itertuples()}
    expected = {
        ("a", "2024-03-05"): 2.0,  # 2 -> 4 March
        ("a", "2024-03-10"): 5.0,  # 4 -> 9 March
        ("a", "2024-03-20"): 5.0,  # the push on 15 March is not activity
        ("b", "2024-03-05"): np.nan,  # one active day: no gap yet
        ("b", "2024-03-10"): np.nan,
        ("b", "2024-03-20"): 15.0,  # 3 -> 18 March
        ("c", "2024-03-05"): np.nan,
        ("c", "2024-03-10"): np.nan,  # the 10 March event is not before the cutoff
        ("c", "2024-03-20"): 9.0,
    }
    assert set(got) == set(expected)
    for key, want in expected.items():
        np.testing.assert_equal(got[key], want, err_msg=str(key))
