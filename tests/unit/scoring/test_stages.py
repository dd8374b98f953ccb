"""Lifecycle cuts from the data's rhythm: gap percentiles, floors, configured cuts, storage."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from churnkit.config import ActivityEvents, SegmentSettings
from churnkit.errors import ChurnkitError
from churnkit.io.warehouse import events_memtable
from churnkit.scoring.stages import StageCuts, gap_counts, lifecycle_stage, stage_cuts


def counts(mapping: dict[float, float]) -> pd.Series:
    return pd.Series(mapping, dtype="float64")


@pytest.mark.parametrize(
    ("gaps", "expected"),
    [
        # a shop whose customers come back every one to six months: silent after 78 days, churned after 160
        ({30: 50, 78: 25, 160: 15, 300: 10}, (78.0, 160.0)),
        ({1: 50, 7: 30, 30: 15, 90: 5}, (7.0, 30.0)),
        # a daily app: churned is never below a week, silent never below a day
        ({1: 95, 2: 5}, (1.0, 7.0)),
        # a weekly habit: the silent floor stays below the churned cut
        ({7: 100}, (6.0, 7.0)),
    ],
)
def test_cuts_are_gap_percentiles(gaps, expected):
    cuts = stage_cuts(SegmentSettings(), counts(gaps))
    assert (cuts.silent_min_days, cuts.churned_days) == expected
    assert cuts.basis == "rhythm" and cuts.gaps == sum(gaps.values())
    assert "the data's rhythm" in cuts.describe()


def test_configured_cuts_win_and_a_single_one_keeps_the_order():
    shop = counts({30: 50, 78: 25, 160: 15, 300: 10})
    both = stage_cuts(SegmentSettings(silent_min_days=5, churned_days=20), shop)
    assert (both.silent_min_days, both.churned_days, both.basis) == (5, 20, "config")
    only_churned = stage_cuts(SegmentSettings(churned_days=60), shop)
    assert (only_churned.silent_min_days, only_churned.churned_days) == (30.0, 60)
    only_silent = stage_cuts(SegmentSettings(silent_min_days=200), shop)
    assert (only_silent.silent_min_days, only_silent.churned_days) == (200, 201)
    assert stage_cuts(SegmentSettings(), None) == StageCuts(7.0, 30.0, "default")  # no gap seen yet
    assert stage_cuts(SegmentSettings(), counts({})).basis == "default"


def test_cuts_round_trip_and_bad_stored_cuts_are_one_line_errors():
    cuts = StageCuts(78.0, 160.0, "rhythm", 31749)
    assert StageCuts.from_dict(cuts.to_dict()) == cuts
    with pytest.raises(ChurnkitError, match="stored lifecycle cuts are not usable"):
        StageCuts.from_dict({"silent_min_days": 9, "churned_days": 3, "basis": "rhythm"})
    with pytest.raises(ChurnkitError, match="stored lifecycle cuts are not usable"):
        StageCuts.from_dict({"churned_days": 3})


def test_stages_follow_the_cuts():
    df = pd.DataFrame({"days_since_last_activity": [100.0, 159.0, 160.0, 5.0],
                       "days_since_first_activity": [400.0] * 4, "gap_mean_days": [20.0, 30.0, 30.0, 40.0],
                       "last_gap_days": [60.0, 30.0, 30.0, 170.0]})
    shop = StageCuts(78.0, 160.0, "rhythm")
    assert lifecycle_stage(df, SegmentSettings(), shop).tolist() == ["silent", "silent", "churned", "recalled"]
    # the same users under a fixed 30-day cut: all but the recalled one are churned
    fixed = lifecycle_stage(df, SegmentSettings(silent_min_days=7, churned_days=30))
    assert fixed.tolist() == ["churned", "churned", "churned", "recalled"]


def test_gap_counts_read_active_days_before_the_as_of_only():
    day = dt.datetime(2024, 1, 1, 10, tzinfo=dt.UTC)

    def at(d: int, event: str = "session", user: str = "a") -> dict:
        return {"user_id": user, "ts": day + dt.timedelta(days=d), "event": event}

    rows = [at(0), at(0), at(3), at(10), at(11, "push_sent"), at(40),  # a: gaps 3, 7, 30
            at(0, user="b"), at(2, user="b"),  # b: gap 2
            at(60), at(61)]  # on and after the as-of: never seen
    got = gap_counts(events_memtable(pd.DataFrame(rows)), ActivityEvents(), dt.date(2024, 3, 1))
    assert got.sort_index().to_dict() == {2.0: 1.0, 3.0: 1.0, 7.0: 1.0, 30.0: 1.0}
    assert np.isclose(stage_cuts(SegmentSettings(), got).churned_days, 30.0)
