"""An order-line log with cancellations, as a UK online retailer exports it, through the CLI.

The log is built here in the UCI "Online Retail" layout (invoice lines; a "C" invoice is a
cancellation with negative quantities; customer ids written as floats, some missing; US dates)
and ingested with the built-in ``online_retail`` source. Then the features and labels on the
stored events count invoices, not lines, and revenue net of refunds. Also: a file already in
the event contract ingests without a source YAML.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import ibis
import pandas as pd
import pyarrow.parquet as pq
import pytest

from churnkit.config import ActivityEvents, FeatureSelection
from churnkit.contracts import LABEL
from churnkit.datasets.labels import attach_labels
from churnkit.errors import ChurnkitError
from churnkit.events import read_events
from churnkit.features.build import feature_frame
from churnkit.features.context import cutoff_table, daily_table
from churnkit.flows.ingest import ingest
from churnkit.flows.project import Project
from churnkit.io.warehouse import duckdb_connection, workspace_events
from churnkit.io.workspace import Workspace

HEADER = "InvoiceNo,StockCode,Description,Quantity,InvoiceDate,UnitPrice,CustomerID,Country"
LINES = [
    # 17850: two invoices on 12-01 (3 lines + 2 lines), a cancellation, one invoice on 12-03
    "536365,85123A,WHITE HANGING HEART T-LIGHT HOLDER,6,12/1/2010 8:26,2.55,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom",
    "536365,84406B,CREAM CUPID HEARTS COAT HANGER,8,12/1/2010 8:26,2.75,17850.0,United Kingdom",
    "536365,71053,WHITE METAL LANTERN,6,12/1/2010 8:26,3.39,17850.0,United Kingdom",  # a copy: duplicate
    "536366,22633,HAND WARMER UNION JACK,6,12/1/2010 8:28,1.85,17850.0,United Kingdom",
    "536366,22632,HAND WARMER RED POLKA DOT,6,12/1/2010 8:28,1.85,17850.0,United Kingdom",
    "C536379,D,Discount,-1,12/1/2010 9:41,27.50,17850.0,United Kingdom",
    "536400,22960,JAM MAKING SET WITH JARS,4,12/3/2010 10:00,4.25,17850,United Kingdom",  # id as an integer
    # 13047: one invoice, part of it cancelled the next day
    "536367,84879,ASSORTED COLOUR BIRD ORNAMENT,32,12/1/2010 8:34,1.69,13047.0,United Kingdom",
    "536367,22745,POPPY'S PLAYHOUSE BEDROOM,6,12/1/2010 8:34,2.10,13047.0,United Kingdom",
    "C536391,22556,PLASTERS IN TIN CIRCUS PARADE,-12,12/2/2010 10:24,1.65,13047.0,United Kingdom",
    # 12583: bought 100, refunded 30; a free line (price 0) is a purchase of nothing
    "536370,22728,ALARM CLOCK BAKELIKE PINK,10,12/1/2010 8:45,10.00,12583.0,France",
    "536370,POST,POSTAGE,1,12/1/2010 8:45,0.00,12583.0,France",
    "C536383,22728,ALARM CLOCK BAKELIKE PINK,-3,12/2/2010 9:00,10.00,12583.0,France",
    # no customer id: quarantined, never dropped silently
    "536544,21773,DECORATIVE ROSE BATHROOM BOTTLE,1,12/1/2010 14:32,2.51,,United Kingdom",
    "536544,21774,DECORATIVE CATS BATHROOM BOTTLE,2,12/1/2010 14:32,2.51,,United Kingdom",
    "536544,21786,POLKADOT RAIN HAT,4,12/1/2010 14:32,0.85,,United Kingdom",
    # a negative line that is no cancellation (an adjustment): an error, not negative revenue
    "A563186,B,Adjust bad debt,1,12/3/2010 14:51,-11062.06,12583.0,United Kingdom",
]
AS_OF = "2010-12-10"


def churnkit(*args: str) -> subprocess.CompletedProcess:
    """The installed command, as a user runs it (no debug tracebacks)."""
    env = {k: v for k, v in os.environ.items() if k != "CHURNKIT_DEBUG"}
    exe = str(Path(sys.executable).with_name("churnkit"))
    return subprocess.run([exe, *args], capture_output=True, text=True, env=env, timeout=300, check=False)


@pytest.fixture(scope="module")
def retail(tmp_path_factory) -> tuple[Workspace, dict]:
    root = tmp_path_factory.mktemp("retail")
    log = root / "online_retail.csv"
    log.write_text("\n".join([HEADER, *LINES]) + "\n", encoding="latin-1")
    ws = Workspace(root / "ws")
    proc = churnkit("--workspace", str(ws.root), "ingest", str(log), "--source", "online_retail",
                    "--as-of", AS_OF, "--json")
    assert proc.returncode == 0, proc.stderr
    return ws, json.loads(proc.stdout)


def test_every_line_is_accounted_for(retail):
    ws, s = retail
    assert s["read"] == len(LINES) == s["accepted"] + s["duplicates"] + s["rejected"]
    assert (s["accepted"], s["duplicates"], s["rejected"]) == (13, 1, 4)
    assert s["rejected_by_reason"] == {"missing_user_id": 3, "negative_amount": 1}
    q = pq.read_table(ws.quarantine_path).to_pandas()
    assert sorted(q.line) == [16, 17, 18, 19]  # 1-based file lines (the header is line 1)
    assert q.loc[q.reason == "negative_amount", "raw"].item().startswith("A563186,B,Adjust bad debt")


def test_refunds_are_positive_ids_are_text_and_invoices_are_orders(retail):
    ws, _ = retail
    ev = read_events(ws)
    assert set(ev.user_id) == {"17850", "13047", "12583"}  # never "17850.0"
    refunds = ev[ev.event == "refund"].sort_values("ts")
    assert refunds.amount.tolist() == pytest.approx([27.5, 30.0, 19.8])
    assert refunds.order_id.tolist() == ["C536379", "C536383", "C536391"]
    assert (ev.amount >= 0).all()
    assert ev[ev.user_id == "17850"].order_id.nunique() == 4
    # 8:26 in London in December is 8:26 UTC
    assert ev.ts.min() == pd.Timestamp("2010-12-01 08:26", tz="UTC")


def features_at(ws: Workspace, day: dt.date) -> pd.DataFrame:
    events = workspace_events(duckdb_connection(), ws)
    ff = feature_frame(events, cutoff_table([day]), None, selection=FeatureSelection(), activity=ActivityEvents(),
                       attribute_levels=None)
    return ff.table.to_pandas().set_index("user_id")


def test_features_count_invoices_and_net_refunds(retail):
    ws, _ = retail
    f = features_at(ws, dt.date(2010, 12, 10))
    bought = {"17850": 15.30 + 20.34 + 22.00 + 11.10 + 11.10 + 17.00, "13047": 54.08 + 12.60, "12583": 100.0}
    refunded = {"17850": 27.50, "13047": 19.80, "12583": 30.0}
    orders = {"17850": 3.0, "13047": 1.0, "12583": 1.0}
    for user, paid in bought.items():
        net = paid - refunded[user]
        row = f.loc[user]
        assert row.purchases_total == orders[user] == row.n_purchase_30d, user
        assert row.revenue_total == pytest.approx(net) and row.revenue_30d == pytest.approx(net), user
        assert row.avg_order_value == pytest.approx(net / orders[user]), user
        assert row.n_refund_30d == 1.0
    assert f.loc["12583", "revenue_total"] == pytest.approx(70.0)  # bought 100, refunded 30
    assert f.loc["17850", "purchase_days_total"] == 2.0


def test_revenue_labels_are_net_of_refunds(retail):
    ws, _ = retail
    events = workspace_events(duckdb_connection(), ws)
    act = ActivityEvents()
    daily = daily_table(events, act.include, act.exclude)
    cutoff = pd.Timestamp("2010-12-01", tz="UTC")
    keys = ibis.memtable(pd.DataFrame({"user_id": ["12583", "13047"], "cutoff": [cutoff] * 2}).astype(
        {"cutoff": "datetime64[us, UTC]"}))
    out = attach_labels(keys, daily, cutoff_table([cutoff.date()]), "revenue", 7).to_pandas()
    got = dict(zip(out.user_id, out[LABEL], strict=True))
    assert got == pytest.approx({"12583": 70.0, "13047": 54.08 + 12.60 - 19.80})


def test_a_file_in_the_event_contract_needs_no_source(tmp_path):
    # customer ids as a float column with a gap, as pandas writes them; optional columns absent
    events = pd.DataFrame({
        "user_id": [17850.0, 13047.0, float("nan")],
        "ts": pd.to_datetime(["2024-01-02 10:00", "2024-01-03 11:00", "2024-01-03 12:00"], utc=True),
        "event": ["purchase", "refund", "purchase"],
        "amount": [20.0, 5.0, 1.0],
        "order_id": ["o1", "o2", "o3"],
    })
    events.to_parquet(tmp_path / "events.parquet")
    ws = tmp_path / "ws"
    proc = churnkit("--workspace", str(ws), "ingest", str(tmp_path / "events.parquet"), "--as-of", "2024-02-01",
                    "--json")
    assert proc.returncode == 0, proc.stderr
    s = json.loads(proc.stdout)
    assert (s["source"], s["accepted"], s["rejected_by_reason"]) == ("contract", 2, {"missing_user_id": 1})
    stored = read_events(Workspace(ws))
    assert stored.user_id.tolist() == ["13047", "17850"] and stored.category.isna().all()
    # the same source by name, on CSV with only the required columns
    (tmp_path / "events.csv").write_text("user_id,ts,event\nu1,2024-01-02T10:00:00Z,session\n")
    s = ingest(Project.at(Workspace(ws)), [tmp_path / "events.csv"], "contract",
               as_of=dt.datetime(2024, 2, 1, tzinfo=dt.UTC))
    assert (s["source"], s["accepted"], s["rejected"]) == ("contract", 1, 0)


def test_a_raw_log_without_a_source_is_a_one_line_error_saying_what_to_do(tmp_path):
    log = tmp_path / "retail.csv"
    log.write_text("\n".join([HEADER, *LINES[:2]]) + "\n")
    proc = churnkit("--workspace", str(tmp_path / "ws"), "ingest", str(log))
    assert proc.returncode != 0
    err = proc.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    assert "missing column 'user_id'" in err and "--source" in err and "docs/sources.md" in err


def test_events_stored_before_order_id_are_read_and_an_append_says_to_replace(tmp_path):
    (tmp_path / "a.csv").write_text("user_id,ts,event,amount\nu1,2024-01-02T10:00:00Z,purchase,5\n")
    (tmp_path / "b.csv").write_text("user_id,ts,event,amount\nu1,2024-01-03T10:00:00Z,purchase,7\n")
    ws = Workspace(tmp_path / "ws")
    project = Project.at(ws)
    as_of = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
    ingest(project, [tmp_path / "a.csv"], "contract", as_of=as_of)
    for f in ws.events_dir.rglob("*.parquet"):  # as an older churnkit wrote them
        pq.write_table(pq.read_table(f).drop_columns(["order_id"]), f)
    events = workspace_events(duckdb_connection(), ws).to_pandas()
    assert events.order_id.isna().all() and events.amount.tolist() == [5.0]
    with pytest.raises(ChurnkitError, match="predate the event field.* order_id.*--mode replace") as err:
        ingest(project, [tmp_path / "b.csv"], "contract", as_of=as_of, mode="append")
    assert "\n" not in str(err.value)
