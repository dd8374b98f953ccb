"""Outcomes in the window after assignment (and the pre-period) equal a hand count, with
the window's edges where the contract puts them."""

from __future__ import annotations

import ibis
import pandas as pd

from churnkit.campaigns.outcomes import NAMES, outcomes
from churnkit.io.warehouse import duckdb_connection

T0 = pd.Timestamp("2024-03-01 10:00", tz="UTC")


def _events(rows):
    df = pd.DataFrame(rows, columns=["user_id", "ts", "event", "amount", "order_id"])
    df["ts"] = T0 + pd.to_timedelta(df["ts"], unit="h")
    df = df.astype({"amount": "float64", "order_id": "string"})
    for col in ("category", "channel", "campaign_id", "variant"):
        df[col] = pd.Series([None] * len(df), dtype="string")
    return df


def test_window_edges_and_every_metric():
    day = 24
    ev = _events([
        ("a", 0, "session", None, None),              # at assigned_ts: in the window
        ("a", 2, "purchase", 10.0, "o1"),             # two lines of one order
        ("a", 2, "purchase", 5.0, "o1"),
        ("a", 3, "purchase", 7.0, None),
        ("a", 5, "refund", 4.0, None),
        ("a", 6, "support_ticket", None, None),
        ("a", 7 * day, "purchase", 99.0, None),       # at window_end: outside
        ("a", -1, "purchase", 20.0, None),            # pre-period
        ("a", -7 * day, "session", None, None),       # the pre-period's first instant: in it
        ("b", 1, "push_sent", None, None),            # not activity
        ("b", 2, "push_opt_out", None, None),
        ("c", -7 * day - 1, "session", None, None),   # before the pre-period
    ])
    assign = pd.DataFrame({"user_id": ["a", "b", "c", "d"], "campaign_id": "c1",
                           "variant": ["treatment", "treatment", "control", "control"],
                           "assigned_ts": T0})
    con = duckdb_connection()
    table = outcomes(con.create_table("ev", ibis.memtable(ev)), con.create_table("as", ibis.memtable(assign)),
                     7, None, ["push_sent", "refund"])
    got = table.execute().set_index("user_id")
    assert got.loc["a", ["retained", "converted", "revenue", "orders", "refunds", "support_tickets"]].tolist() == [
        1.0, 1.0, 18.0, 2.0, 1.0, 1.0]
    assert got.loc["a", ["pre_retained", "pre_converted", "pre_revenue", "pre_orders"]].tolist() == [1.0, 1.0, 20.0, 1.0]
    assert got.loc["b", ["retained", "push_opt_outs"]].tolist() == [1.0, 1.0]  # an opt-out is an event, so activity
    assert got.loc["c"][list(NAMES)].sum() == 0 and got.loc["c", "pre_retained"] == 0
    assert got.loc["d"][list(NAMES)].sum() == 0  # no event at all: kept, with zeros
    assert (pd.to_datetime(got["window_end"], utc=True) == T0 + pd.Timedelta(days=7)).all()


def test_a_row_horizon_overrides_the_default_window():
    ev = _events([("a", 24 * 10, "session", None, None)])
    assign = pd.DataFrame({"user_id": ["a", "a"], "campaign_id": ["short", "long"], "variant": "t",
                           "assigned_ts": T0, "horizon_days": pd.array([7, 28], dtype="Int32")})
    con = duckdb_connection()
    got = outcomes(con.create_table("ev", ibis.memtable(ev)), con.create_table("as", ibis.memtable(assign)),
                   14, None, []).execute().set_index("campaign_id")
    assert got.loc["short", "retained"] == 0 and got.loc["long", "retained"] == 1
