"""RFM tiers and lifecycle stages on hand-made rows, boundaries included."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from churnkit.errors import ChurnkitError, ConfigError
from churnkit.scoring.segments import (
    RFMSegmenter,
    SegmentSettings,
    segment_columns_missing,
    segment_settings,
)
from churnkit.scoring.stages import lifecycle_stage

NAN = float("nan")


def rfm_rows(rows: list[tuple[float, float, float]]) -> pd.DataFrame:
    """(days_since_last_purchase, purchases_total, revenue_total) per row."""
    return pd.DataFrame(rows, columns=["days_since_last_purchase", "purchases_total", "revenue_total"])


# --------------------------------------------------------------------------- RFM


def test_thresholds_are_quantiles_of_buyers_only():
    buyers = [(float(i), float(i + 1), 10.0 * (i + 1)) for i in range(100)]
    never = [(NAN, 0.0, 0.0)] * 50
    seg = RFMSegmenter().fit(rfm_rows(buyers + never))
    np.testing.assert_allclose(seg.recency_thresholds_, [19.8, 39.6, 59.4, 79.2])
    np.testing.assert_allclose(seg.frequency_thresholds_, [20.8, 40.6, 60.4, 80.2])
    np.testing.assert_allclose(seg.monetary_thresholds_, [208, 406, 604, 802])
    assert seg.n_buyers_ == 100 and seg.frequency_column_ == "purchases_total"
    scores = seg.scores(rfm_rows(buyers))
    # equal fifths: each score holds 20 buyers; recent buyers score high on R
    assert scores.rfm_r.value_counts().to_dict() == {5: 20, 4: 20, 3: 20, 2: 20, 1: 20}
    assert scores.rfm_r.iloc[0] == 5 and scores.rfm_r.iloc[99] == 1
    assert scores.rfm_f.iloc[0] == 1 and scores.rfm_m.iloc[99] == 5


@pytest.fixture
def fixed() -> RFMSegmenter:
    return RFMSegmenter.from_dict({
        "settings": {},
        "frequency_column": "purchases_total",
        "thresholds": {"recency": [10, 20, 30, 40], "frequency": [1, 2, 4, 8], "monetary": [50, 100, 200, 400]},
    })


@pytest.mark.parametrize(
    ("row", "scores", "tier"),
    [
        ((5, 10, 500), (5, 5, 5), "champions"),
        ((5, 1, 20), (5, 1, 1), "new customers"),
        ((5, 2, 150), (5, 2, 3), "potential loyalists"),
        ((15, 1, 20), (4, 1, 1), "promising"),
        ((15, 5, 300), (4, 4, 4), "loyal"),
        ((25, 3, 150), (3, 3, 3), "need attention"),
        ((25, 1, 20), (3, 1, 1), "about to sleep"),
        ((35, 5, 300), (2, 4, 4), "at risk"),
        ((35, 1, 60), (2, 1, 2), "hibernating"),
        ((50, 10, 500), (1, 5, 5), "cannot lose them"),
        ((50, 1, 20), (1, 1, 1), "lost"),
        # a value equal to a threshold has not passed it
        ((10, 2, 100), (4, 2, 2), "potential loyalists"),
        ((40, 8, 400), (1, 4, 4), "at risk"),
    ],
)
def test_tier_of_hand_made_rows(fixed, row, scores, tier):
    out = fixed.transform(rfm_rows([row]))
    assert tuple(out.loc[0, ["rfm_r", "rfm_f", "rfm_m"]]) == scores
    assert out.loc[0, "rfm_tier"] == tier


def test_users_who_never_bought_have_no_scores(fixed):
    out = fixed.transform(rfm_rows([(NAN, 0.0, 0.0), (5, 10, 500)]))
    assert out.rfm_tier.tolist() == ["no purchases yet", "champions"]
    assert out.loc[0, ["rfm_r", "rfm_f", "rfm_m"]].isna().all()
    assert str(out.rfm_r.dtype) == "Int64"


def test_round_trip_and_renamed_tiers():
    rng = np.random.default_rng(3)
    df = rfm_rows([(float(rng.integers(0, 300)), float(rng.integers(1, 20)), float(rng.gamma(2, 50)))
                   for _ in range(500)] + [(NAN, 0.0, 0.0)])
    seg = RFMSegmenter(SegmentSettings(tier_names={"cannot_lose_them": "VIP at risk"})).fit(df)
    stored = json.loads(json.dumps(seg.to_dict()))
    again = RFMSegmenter.from_dict(stored)
    pd.testing.assert_frame_equal(again.transform(df), seg.transform(df))
    assert "VIP at risk" in set(seg.transform(rfm_rows([(299, 19, 5000)])).rfm_tier)


def test_clv_frequency_when_purchases_total_is_absent():
    df = pd.DataFrame({"days_since_last_purchase": [1.0, 50.0, NAN], "clv_frequency": [3.0, 0.0, NAN],
                       "revenue_total": [90.0, 10.0, 0.0]})
    out = RFMSegmenter(SegmentSettings(rfm_bins=2)).fit_transform(df)
    assert out.rfm_tier.tolist()[2] == "no purchases yet"
    assert out.rfm_r.tolist()[:2] == [2, 1]


def test_rfm_errors_are_one_line():
    with pytest.raises(ChurnkitError, match="not fitted"):
        RFMSegmenter().transform(rfm_rows([(1, 1, 1)]))
    with pytest.raises(ChurnkitError, match="nobody in the data has bought"):
        RFMSegmenter().fit(rfm_rows([(NAN, 0, 0)]))
    with pytest.raises(ChurnkitError, match="revenue_total"):
        RFMSegmenter().fit(rfm_rows([(1, 1, 1)]).drop(columns="revenue_total"))
    with pytest.raises(ChurnkitError, match="thresholds are not usable"):
        RFMSegmenter.from_dict({"settings": {}, "frequency_column": "purchases_total",
                                "thresholds": {"recency": [3, 2, 1, 0], "frequency": [1] * 4, "monetary": [1] * 4}})


# --------------------------------------------------------------------------- lifecycle


def stage(since: float, age: float = 200.0, gap: float = 2.0, last_gap: float = 2.0,
          settings: SegmentSettings | None = None) -> str:
    df = pd.DataFrame({"days_since_last_activity": [since], "days_since_first_activity": [age],
                       "gap_mean_days": [gap], "last_gap_days": [last_gap]})
    return lifecycle_stage(df, settings).iloc[0]


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"since": 1}, "active"),
        # churned: no activity for churned_days (30) or more
        ({"since": 30}, "churned"),
        ({"since": 29.9, "gap": 20}, "active"),  # quiet, but within 3x a 20-day rhythm
        ({"since": NAN, "age": NAN, "gap": NAN, "last_gap": NAN}, "churned"),  # never active
        # new: first active day at most new_days (14) ago; churned still wins
        ({"since": 3, "age": 14}, "new"),
        ({"since": 3, "age": 14.5}, "active"),
        ({"since": 12, "age": 14, "gap": NAN, "last_gap": NAN}, "new"),
        ({"since": 30, "age": 10}, "churned"),
        # recalled: the latest active day ended a gap of >= 30 days, at most 14 days ago
        ({"since": 14, "last_gap": 30, "gap": 10}, "recalled"),
        ({"since": 0.5, "last_gap": 45}, "recalled"),
        ({"since": 14.5, "last_gap": 30, "gap": 3}, "silent"),
        ({"since": 2, "last_gap": 29}, "active"),
        # silent: quiet for more than max(3 x typical gap, 7 days)
        ({"since": 7, "gap": 1}, "active"),
        ({"since": 7.5, "gap": 1}, "silent"),
        ({"since": 12, "gap": 4}, "active"),
        ({"since": 12.5, "gap": 4}, "silent"),
        ({"since": 8, "gap": NAN, "last_gap": NAN}, "silent"),  # one active day: the minimum alone
    ],
)
def test_lifecycle_stage_of_hand_made_rows(kwargs, expected):
    assert stage(**kwargs) == expected


def test_lifecycle_settings_move_the_boundaries():
    s = SegmentSettings(new_days=0, silent_factor=1.5, silent_min_days=2, churned_days=10, recalled_days=3)
    assert stage(3.5, gap=2, settings=s) == "silent"
    assert stage(10, settings=s) == "churned"
    assert stage(3, last_gap=10, settings=s) == "recalled"
    assert stage(1, age=0.5, settings=s) == "active"


def test_lifecycle_needs_its_features():
    df = pd.DataFrame({"days_since_last_activity": [1.0], "gap_mean_days": [1.0], "days_since_first_event": [9.0]})
    with pytest.raises(ChurnkitError, match=r"last_gap_days"):
        lifecycle_stage(df)
    out = lifecycle_stage(df.assign(last_gap_days=1.0), SegmentSettings())
    assert out.tolist() == ["new"] and out.name == "lifecycle_stage"  # first event 9 days ago


# --------------------------------------------------------------------------- settings


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"silent_factor": -1}, "'silent_factor'"),
        ({"rfm_bins": 1}, "'rfm_bins'"),
        ({"churnd_days": 10}, "unknown key 'churnd_days'"),
        ({"tier_names": {"vip": "VIP"}}, "unknown tiers ['vip']"),
        ({"silent_min_days": 40, "churned_days": 30}, "silent_min_days (40) must be below churned_days (30)"),
        ({"new_days": "soon"}, "'new_days'"),
    ],
)
def test_bad_settings_are_one_line_errors(data, message):
    with pytest.raises(ConfigError) as err:
        segment_settings(data, "configs/segments.yaml")
    text = str(err.value)
    assert "\n" not in text and text.startswith("configs/segments.yaml: ")
    assert message in text


def test_default_settings_are_documented_values():
    s = segment_settings(None)
    assert (s.rfm_bins, s.new_days, s.silent_factor, s.silent_min_days, s.churned_days, s.recalled_days) == (
        5, 14, 3.0, None, None, 14)  # silent and churned cuts: from the data's rhythm


def test_segment_columns_missing_names_what_tiers_and_stages_lack():
    full = ["days_since_last_purchase", "revenue_total", "clv_frequency", "days_since_last_activity",
            "gap_mean_days", "last_gap_days", "tenure_days"]
    assert segment_columns_missing(full) == []
    assert segment_columns_missing(full[:2] + full[3:6]) == ["purchases_total", "days_since_first_activity"]
    assert segment_columns_missing([c for c in full if c != "gap_mean_days"]) == ["gap_mean_days"]
