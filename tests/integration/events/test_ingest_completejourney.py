"""The real Complete Journey basket lines through the built-in ``completejourney`` source.

75,000 sampled lines of 47,243 baskets (2,377 households), 416 with quantity 0, and the
demographics table of 801 households as the users table. A basket is one purchase whatever
its number of lines; the expected figures are computed here from the CSV with pandas,
independently of churnkit's reader and feature code.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from churnkit.config import ActivityEvents, FeatureSelection
from churnkit.events import read_events
from churnkit.features.build import feature_frame
from churnkit.features.context import cutoff_table
from churnkit.flows.ingest import ingest
from churnkit.flows.project import Project
from churnkit.io.warehouse import duckdb_connection, workspace_events, workspace_users
from churnkit.io.workspace import Workspace

DATA = Path(__file__).resolve().parents[3].parent / "shared" / "data" / "completejourney"
AS_OF = dt.datetime(2018, 1, 2, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def journey(tmp_path_factory) -> tuple[Workspace, dict, pd.DataFrame]:
    if not (DATA / "transactions_sample.csv").is_file():
        pytest.skip(f"Complete Journey data not found at {DATA} (shared/ sits beside the repo)")
    ws = Workspace(tmp_path_factory.mktemp("journey"))
    summary = ingest(Project.at(ws), [DATA / "transactions_sample.csv"], "completejourney", as_of=AS_OF)
    raw = pd.read_csv(DATA / "transactions_sample.csv", dtype={"household_id": str, "basket_id": str})
    return ws, summary, raw


def test_every_line_and_household_is_accounted_for(journey):
    _, s, raw = journey
    assert s["read"] == len(raw) == 75_000
    assert s["read"] == s["accepted"] + s["duplicates"] + s["rejected"]
    assert (s["accepted"], s["rejected"]) == (75_000, 0)  # zero-quantity lines included
    assert s["users"] == raw.household_id.nunique() == 2_377
    u = s["users_table"]
    assert (u["read"], u["accepted"], u["rejected"], u["users_without_events"]) == (801, 801, 0, 0)


def test_zero_quantity_lines_are_purchases_of_nothing_in_their_basket(journey):
    ws, _, raw = journey
    ev = read_events(ws)
    assert (ev.event == "purchase").all() and ev.order_id.notna().all()
    zero = raw[raw.quantity == 0]
    assert len(zero) == 416
    stored = ev[ev.order_id.isin(set(zero.basket_id))]
    assert set(stored.order_id) == set(zero.basket_id)  # every such basket is there
    assert (ev.amount == 0).sum() == (raw.sales_value == 0).sum() >= len(zero)
    assert ev.amount.sum() == pytest.approx(raw.sales_value.sum(), abs=1e-6)


def test_baskets_are_orders(journey):
    ws, _, raw = journey
    con = duckdb_connection()
    ff = feature_frame(workspace_events(con, ws), cutoff_table([AS_OF.date()]), workspace_users(con, ws),
                       selection=FeatureSelection(families=["rfm", "windows", "attributes"]),
                       activity=ActivityEvents(), attribute_levels={"income": ["35-49K", "50-74K"]})
    f = ff.table.to_pandas().set_index("user_id").sort_index()
    by = raw.groupby("household_id")
    expected = pd.DataFrame({
        "orders": by.basket_id.nunique(),
        "lines": by.size(),
        "revenue": by.sales_value.sum(),
        "days": by.transaction_timestamp.apply(lambda t: t.str[:10].nunique()),
    }).sort_index()
    assert list(f.index) == list(expected.index)
    assert (f.purchases_total == expected.orders).all()
    assert (expected.lines > expected.orders).sum() > 1_000  # lines would have over-counted
    assert f.purchase_days_total.tolist() == expected.days.astype(float).tolist()
    assert f.revenue_total.to_numpy() == pytest.approx(expected.revenue.to_numpy(), abs=1e-6)
    assert f.avg_order_value.to_numpy() == pytest.approx((expected.revenue / expected.orders).to_numpy())
    # demographics as attributes: household 1 is in the 35-49K band
    assert f.loc["1", "income_is_35_49k"] == 1.0
