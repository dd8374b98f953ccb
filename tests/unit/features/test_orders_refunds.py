"""Orders and refunds in the features and labels, hand-computed on a tiny log.

Cutoff C = 2024-03-01 (features see 02-xx, labels see [C, C + 14 days)).

user o  order A1: three lines 10 + 20 + 30 on 02-01 10:00; order A2: two lines 5 + 5 on
        02-01 15:00; order A3: one line 40 on 02-20 09:00; a refund of 30 on 02-25 12:00
        (cancellation C-A3). After C: only a refund of 40 on 03-05.
user p  no order ids (a log without them): two purchase events 12 and 8 at 02-10 10:00, the
        same second. After C: one order P9 of three lines (1 + 2 + 3) on 03-04.
user r  bought 100 (order R1) on 02-05 and refunded 30 on 02-06. After C: an order of 50 on
        03-02 and a refund of 20 on 03-03.
user m  a purchase line of order X and a purchase without an order id on 02-15.
user s  order S1 with a line one second before C and a line exactly at C.
"""

from __future__ import annotations

import pandas as pd
import pytest

from churnkit.config import ActivityEvents, FeatureSelection
from churnkit.contracts import LABEL
from churnkit.datasets.labels import attach_labels, outcome_table
from churnkit.features.build import feature_frame
from churnkit.features.context import cutoff_table, daily_table
from churnkit.io.warehouse import events_memtable

C = pd.Timestamp("2024-03-01", tz="UTC")


def line(user: str, ts: str, event: str, amount: float, order: str | None = None) -> dict:
    return {"user_id": user, "ts": pd.Timestamp(ts, tz="UTC"), "event": event, "amount": amount, "order_id": order}


LOG = pd.DataFrame([
    line("o", "2024-02-01 10:00", "purchase", 10.0, "A1"),
    line("o", "2024-02-01 10:00", "purchase", 20.0, "A1"),
    line("o", "2024-02-01 10:00", "purchase", 30.0, "A1"),
    line("o", "2024-02-01 15:00", "purchase", 5.0, "A2"),
    line("o", "2024-02-01 15:00", "purchase", 5.0, "A2"),
    line("o", "2024-02-20 09:00", "purchase", 40.0, "A3"),
    line("o", "2024-02-25 12:00", "refund", 30.0, "C-A3"),
    line("o", "2024-03-05 12:00", "refund", 40.0, "C-A9"),
    line("p", "2024-02-10 10:00", "purchase", 12.0),
    line("p", "2024-02-10 10:00", "purchase", 8.0),
    line("p", "2024-03-04 10:00", "purchase", 1.0, "P9"),
    line("p", "2024-03-04 10:00", "purchase", 2.0, "P9"),
    line("p", "2024-03-04 10:00", "purchase", 3.0, "P9"),
    line("r", "2024-02-05 10:00", "purchase", 100.0, "R1"),
    line("r", "2024-02-06 10:00", "refund", 30.0, "C-R1"),
    line("r", "2024-03-02 10:00", "purchase", 50.0, "R2"),
    line("r", "2024-03-03 10:00", "refund", 20.0, "C-R2"),
    line("m", "2024-02-15 10:00", "purchase", 7.0, "X"),
    line("m", "2024-02-15 11:00", "purchase", 3.0),
    line("s", "2024-02-29 23:59:59", "purchase", 4.0, "S1"),
    line("s", "2024-03-01 00:00", "purchase", 6.0, "S1"),
])


def features(activity: ActivityEvents | None = None) -> pd.DataFrame:
    ff = feature_frame(events_memtable(LOG), cutoff_table([C.date()]), None, selection=FeatureSelection(),
                       activity=activity or ActivityEvents(), attribute_levels=None)
    return ff.table.to_pandas().set_index("user_id")


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return features()


def values(frame: pd.DataFrame, user: str, names: list[str]) -> list[float]:
    return [float(frame.loc[user, n]) for n in names]


def test_lines_of_one_order_are_one_purchase(frame):
    names = ["purchases_total", "purchase_days_total", "n_purchase_30d", "n_purchase_7d", "avg_order_value"]
    # three orders (A1, A2, A3) on two days, none in the last 7; net revenue 60 + 10 + 40 - 30
    assert values(frame, "o", names) == pytest.approx([3.0, 2.0, 3.0, 0.0, 80.0 / 3])
    # a line with an order id and one without: two purchases
    assert values(frame, "m", names[:3]) == [2.0, 1.0, 2.0]


def test_a_log_without_order_ids_counts_purchase_events_as_before(frame):
    # two purchase events in the same second: two purchases on one purchase day (as today)
    names = ["purchases_total", "purchase_days_total", "avg_order_value", "clv_frequency"]
    assert values(frame, "p", names) == [2.0, 1.0, 10.0, 0.0]


def test_revenue_is_net_of_refunds(frame):
    # bought 100, refunded 30: revenue 70 in every window, one order of 70
    names = ["revenue_total", "revenue_30d", "revenue_90d", "avg_order_value", "purchases_total", "n_refund_30d"]
    assert values(frame, "r", names) == [70.0, 70.0, 70.0, 70.0, 1.0, 1.0]
    # a refund in the last 7 days of an order bought before them: the window's net is negative
    assert values(frame, "o", ["revenue_7d", "revenue_30d", "revenue_total", "n_refund_7d"]) == [-30.0, 80.0, 80.0, 1.0]


def test_a_refund_is_not_activity_unless_the_problem_says_so(frame):
    # o's last activity is order A3 (02-20 09:00), not the refund on 02-25 12:00
    assert frame.loc["o", "days_since_last_activity"] == pytest.approx(9 + 15 / 24)
    counted = features(ActivityEvents(exclude=["push_sent"]))
    assert counted.loc["o", "days_since_last_activity"] == pytest.approx(4.5)
    assert counted.loc["o", "activity_30d"] == frame.loc["o", "activity_30d"] + 1


def test_an_order_across_the_cutoff_counts_on_each_side_only_with_its_own_lines(frame):
    assert values(frame, "s", ["purchases_total", "revenue_total"]) == [1.0, 4.0]
    outcomes = outcomes_at_c().set_index("user_id")
    assert outcomes.loc["s", ["future_purchases", "future_revenue"]].tolist() == [1.0, 6.0]


def outcomes_at_c() -> pd.DataFrame:
    daily = daily_table(events_memtable(LOG), None, list(ActivityEvents().exclude))
    return outcome_table(daily, cutoff_table([C.date()]), 14).to_pandas()


def labels(kind: str, activity: ActivityEvents | None = None) -> dict[str, float]:
    act = activity or ActivityEvents()
    daily = daily_table(events_memtable(LOG), act.include, act.exclude)
    import ibis

    keys = ibis.memtable(pd.DataFrame({"user_id": ["o", "p", "r", "m"], "cutoff": [C] * 4}).astype(
        {"cutoff": "datetime64[us, UTC]"}))
    out = attach_labels(keys, daily, cutoff_table([C.date()]), kind, 14).to_pandas()
    return dict(zip(out.user_id, out[LABEL], strict=True))


def test_revenue_labels_are_net_of_refunds_and_never_negative():
    got = labels("revenue")
    assert got["r"] == 30.0  # 50 bought, 20 refunded in the window
    assert got["p"] == 6.0  # one order of three lines
    assert got["o"] == 0.0  # only a refund of an earlier order: no future value, not -40
    assert got["m"] == 0.0
    future = outcomes_at_c().set_index("user_id")
    assert future.loc["p", "future_purchases"] == 1.0  # three lines, one order
    assert future.loc["o", "future_revenue"] == -40.0  # the outcome itself stays net


def test_purchase_and_churn_labels_with_refunds():
    assert labels("purchase") == {"o": 0.0, "p": 1.0, "r": 1.0, "m": 0.0}
    # o's only event in the window is a refund: churned by default, active if refunds count
    assert labels("churn")["o"] == 1.0
    assert labels("churn", ActivityEvents(exclude=["push_sent"]))["o"] == 0.0
