"""Hand-computed feature values on a tiny log, one family at a time, with the edge cases.

The log (all times UTC unless said otherwise), cutoff C = 2024-03-01 00:00 and C2 = 03-08:

user a  01-05 08:00 push_sent;  02-01 10:00 session, 10:05 view (books), 10:10 add_to_cart,
        10:20 purchase 10.00, 18:00 purchase 5.00 (music): two purchases on one day;
        02-10 08:00 campaign push_sent (c1), 09:00 push_open;  02-20 09:00 session (ios),
        09:10 view (music);  02-25 12:00 purchase 20.00;  a session at 00:30 Berlin time on
        03-01, which is 02-29 23:30 UTC (before C);  a purchase of 50.00 at 23:30 New York
        time on 02-29, which is 03-01 04:30 UTC (after C);  a purchase of 100.00 exactly at C.
user b  one event: 02-28 12:00 session.
user c  only pushes: 02-10 00:00 push_sent, 02-26 00:00 campaign push_sent (c1).
user d  only an event exactly at C: no row at C, a row at C2.

Active days of a before C (everything but push_sent counts): 02-01, 02-10, 02-20, 02-25,
02-29, so the gaps are 9, 10, 5, 4 days.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest

from churnkit.config import ActivityEvents, FeatureSelection, ProblemConfig
from churnkit.datasets.eligibility import eligible
from churnkit.features.build import feature_frame
from churnkit.features.context import cutoff_table
from churnkit.io.warehouse import events_memtable, users_memtable

C, C2 = pd.Timestamp("2024-03-01", tz="UTC"), pd.Timestamp("2024-03-08", tz="UTC")


def utc(s: str, tz: str = "UTC") -> pd.Timestamp:
    return pd.Timestamp(s, tz=tz).tz_convert("UTC")


def ev(user, ts, event, amount=None, category=None, channel=None, campaign_id=None):
    return {"user_id": user, "ts": ts, "event": event, "amount": amount, "category": category, "channel": channel,
                "campaign_id": campaign_id, "variant": None}


LOG = pd.DataFrame([
    ev("a", utc("2024-01-05 08:00"), "push_sent"),
    ev("a", utc("2024-02-01 10:00"), "session", channel="web"),
    ev("a", utc("2024-02-01 10:05"), "view", category="books", channel="web"),
    ev("a", utc("2024-02-01 10:10"), "add_to_cart", category="books", channel="web"),
    ev("a", utc("2024-02-01 10:20"), "purchase", 10.0, "books", "web"),
    ev("a", utc("2024-02-01 18:00"), "purchase", 5.0, "music", "web"),
    ev("a", utc("2024-02-10 08:00"), "push_sent", campaign_id="c1"),
    ev("a", utc("2024-02-10 09:00"), "push_open"),
    ev("a", utc("2024-02-20 09:00"), "session", channel="ios"),
    ev("a", utc("2024-02-20 09:10"), "view", category="music", channel="ios"),
    ev("a", utc("2024-02-25 12:00"), "purchase", 20.0, "music", "ios"),
    ev("a", utc("2024-03-01 00:30", "Europe/Berlin"), "session", channel="android"),
    ev("a", utc("2024-02-29 23:30", "America/New_York"), "purchase", 50.0),
    ev("a", C, "purchase", 100.0),
    ev("b", utc("2024-02-28 12:00"), "session"),
    ev("c", utc("2024-02-10 00:00"), "push_sent"),
    ev("c", utc("2024-02-26 00:00"), "push_sent", campaign_id="c1"),
    ev("d", C, "session"),
])
USERS = pd.DataFrame({
    "user_id": ["a", "b", "c", "d"],
    "signup_ts": [utc("2024-01-01"), utc("2024-02-27 12:00"), utc("2024-02-01"), utc("2024-02-29")],
    "region": ["eu", None, "us", "us"],
})
NAN = math.nan


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    ff = feature_frame(
        events_memtable(LOG),
        cutoff_table([C.date(), C2.date()]),
        users_memtable(USERS),
        selection=FeatureSelection(),
        activity=ActivityEvents(),
        attribute_levels={"region": ["eu", "us"]},
    )
    df = ff.table.to_pandas()
    return df.set_index(["user_id", df.cutoff.dt.strftime("%Y-%m-%d")]).drop(columns="cutoff")


def check(frame: pd.DataFrame, user: str, cutoff: pd.Timestamp, expected: dict[str, float]) -> None:
    row = frame.loc[(user, cutoff.strftime("%Y-%m-%d"))]
    got = {k: float(row[k]) for k in expected}
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-12, nan_ok=True)


def test_rows_exist_only_for_users_with_events_before_the_cutoff(frame):
    at_c = set(frame.xs("2024-03-01", level=1).index)
    assert at_c == {"a", "b", "c"}  # d's only event is exactly at C: it belongs to C2
    assert set(frame.xs("2024-03-08", level=1).index) == {"a", "b", "c", "d"}


def test_rfm_with_same_day_purchases_merged(frame):
    check(frame, "a", C, {
        "days_since_last_activity": 1800 / 86400,  # the Berlin session, 30 minutes before C
        "days_since_last_purchase": 4.5,
        "days_since_first_event": 55 + 16 / 24,
        "days_since_first_activity": 29.0,
        "active_days_total": 5.0,
        "purchase_days_total": 2.0,
        "purchases_total": 3.0,
        "revenue_total": 35.0,
        "avg_order_value": 35.0 / 3,
        "clv_frequency": 1.0,  # two purchase days: one repeat
        "clv_recency_days": 24.0,
        "clv_age_days": 28.0,
        "clv_monetary": 20.0,  # the first day's 15.00 is not repeat spend
    })


def test_events_at_and_after_the_cutoff_count_only_for_the_next_cutoff(frame):
    check(frame, "a", C2, {
        "purchases_total": 5.0,
        "revenue_total": 185.0,
        "purchase_days_total": 3.0,
        "days_since_last_purchase": 6 + 19.5 / 24,  # the New York purchase, 03-01 04:30 UTC
        "clv_frequency": 2.0,
        "clv_monetary": 85.0,
    })
    check(frame, "d", C2, {"days_since_last_activity": 7.0, "active_days_total": 1.0})


def test_windows(frame):
    check(frame, "a", C, {
        "n_session_7d": 1.0, "n_purchase_7d": 1.0, "revenue_7d": 20.0, "active_days_7d": 2.0,
        "activity_7d": 2.0, "n_push_open_7d": 0.0,
        "n_session_30d": 3.0, "n_view_30d": 2.0, "n_add_to_cart_30d": 1.0, "n_purchase_30d": 3.0,
        "revenue_30d": 35.0, "n_push_sent_30d": 1.0, "n_push_open_30d": 1.0, "activity_30d": 10.0,
        "active_days_30d": 5.0, "n_push_sent_90d": 2.0,
    })


def test_trends(frame):
    check(frame, "a", C, {
        # 2 activity events in the last 7 days, 3 in the 21 before
        "activity_rate_change_7v21": 2 / 7 - 3 / 21,
        "purchase_rate_change_7v21": 1 / 7 - 0 / 21,
        "session_rate_change_30v60": 3 / 30 - 0 / 60,
        "revenue_rate_change_7v21": 20 / 7 - 0 / 21,
    })


def test_gaps(frame):
    check(frame, "a", C, {
        "gap_mean_days": 7.0,
        "gap_std_days": math.sqrt(6.5),
        "gap_max_days": 10.0,
        "last_gap_days": 4.0,
        "silence_vs_typical_gap": (1800 / 86400) / 7.0,
    })


def test_funnel_push_campaigns_diversity(frame):
    check(frame, "a", C, {
        "view_to_cart_rate_90d": 0.5,
        "cart_to_purchase_rate_90d": 3.0,
        "session_to_purchase_rate_90d": 1.0,
        "push_open_rate_30d": 1.0,
        "push_open_rate_90d": 0.5,
        "push_opens_prev_60d": 0.0,
        "days_since_last_push_open": 19 + 15 / 24,
        "campaign_pushes_90d": 1.0,
        "campaign_pushes_total": 1.0,
        "coupon_redeems_total": 0.0,
        "days_since_last_campaign": 19 + 16 / 24,
        "categories_90d": 2.0,
        "channels_90d": 3.0,
    })


def test_attributes(frame):
    check(frame, "a", C, {"tenure_days": 60.0, "region_is_eu": 1.0, "region_is_us": 0.0})
    check(frame, "b", C, {"tenure_days": 2.5, "region_is_eu": 0.0, "region_is_us": 0.0})


def test_a_user_with_one_event(frame):
    check(frame, "b", C, {
        "days_since_last_activity": 1.5, "days_since_first_event": 1.5, "active_days_total": 1.0,
        "purchases_total": 0.0, "revenue_total": 0.0, "days_since_last_purchase": NAN,
        "avg_order_value": NAN, "clv_frequency": 0.0, "clv_recency_days": NAN, "clv_age_days": NAN,
        "gap_mean_days": NAN, "gap_max_days": NAN, "last_gap_days": NAN, "silence_vs_typical_gap": NAN,
        "session_to_purchase_rate_90d": 0.0, "view_to_cart_rate_90d": NAN,
    })


def test_a_user_with_only_pushes_has_features_but_no_activity(frame):
    check(frame, "c", C, {
        "days_since_last_activity": NAN, "active_days_total": 0.0, "activity_30d": 0.0,
        "days_since_first_event": 20.0, "n_push_sent_30d": 2.0, "push_open_rate_30d": 0.0,
        "days_since_last_push_open": NAN, "campaign_pushes_total": 1.0, "days_since_last_campaign": 4.0,
    })
    week = ProblemConfig(name="w", kind="churn", lookback_days=7, horizon_days=7)

    def eligible_at(user: str) -> bool:
        row = frame.loc[(user, "2024-03-01")]
        return bool(eligible(row["days_since_last_activity"], row["days_since_first_activity"], week))

    assert not eligible_at("c")  # never eligible: no activity
    assert eligible_at("a") and frame.loc[("a", "2024-03-01"), "activity_7d"] == 2
