"""Cohort retention equals an independent pandas computation: CDNOW first-purchase month
cohorts with monthly repeat-purchase retention, and weekly activity cohorts of a simulation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.config import IngestSettings, KpiSettings, SimulateSettings, load_source
from churnkit.events.ingest import ingest
from churnkit.flows.kpi import cohorts, compute_cohorts
from churnkit.flows.project import Project
from churnkit.io.warehouse import duckdb_connection, workspace_events
from churnkit.io.workspace import Workspace

PERIOD = {"day": "D", "week": "W-SUN", "month": "M"}


def reference(ev: pd.DataFrame, grain: str, start: str, measure: str, exclude: list[str]) -> pd.DataFrame:
    """(cohort, k) -> size, retained, retained_on_or_after, revenue, from the events alone."""
    e = ev.copy()
    e["day"] = e["ts"].dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
    act = e["event"].notna() & ~e["event"].isin(exclude)
    began = e[e["event"] == "purchase"] if start == "first_purchase" else e[act]
    first = began.groupby("user_id")["day"].min()
    e = e[e["user_id"].isin(first.index)]
    e["start"] = e["user_id"].map(first)
    e = e[e["day"] >= e["start"]]
    per = PERIOD[grain]
    e["cohort"] = e["start"].dt.to_period(per)
    e["k"] = (e["day"].dt.to_period(per) - e["cohort"]).apply(lambda x: x.n)
    did = (e["event"] == "purchase") if measure == "purchase" else (e["event"].notna() & ~e["event"].isin(exclude))
    sizes = first.dt.to_period(per).value_counts()
    rows = {}
    last_k = e[did].groupby(["cohort", "user_id"])["k"].max()
    for (cohort, k), g in e.groupby(["cohort", "k"]):
        gd = g[did.loc[g.index]]
        rev = g.loc[g["event"] == "purchase", "amount"].sum() - g.loc[g["event"] == "refund", "amount"].sum()
        lk = last_k.loc[cohort] if cohort in last_k.index.get_level_values(0) else pd.Series(dtype=int)
        rows[(cohort.start_time.date(), k)] = (sizes[cohort], gd["user_id"].nunique(), int((lk >= k).sum()), rev)
    return pd.DataFrame.from_dict(rows, orient="index", columns=["size", "retained", "retained_on_or_after", "revenue"])


def assert_matches(table: pd.DataFrame, want: pd.DataFrame) -> None:
    got = table.set_index(["cohort", "k"])
    common = got.index.intersection(want.index)
    assert len(common) == len(want), "every (cohort, k) with activity is in the table"
    missing = got.index.difference(want.index)
    assert (got.loc[missing, ["retained", "retained_on_or_after"]] == 0).all().all()  # the rest: nobody
    for col in ("size", "retained", "retained_on_or_after"):
        assert (got.loc[common, col].to_numpy() == want.loc[common, col].to_numpy()).all(), col
    np.testing.assert_allclose(got.loc[common, "revenue"], want.loc[common, "revenue"], rtol=1e-9, atol=1e-6)


@pytest.fixture(scope="module")
def cdnow_ws(cdnow_dir, tmp_path_factory):
    ws = Workspace(tmp_path_factory.mktemp("cdnow_cohorts"))
    ingest([cdnow_dir / "CDNOW_master.txt"], load_source("cdnow_master"), ws, as_of=None, settings=IngestSettings())
    return ws


def test_cdnow_first_purchase_month_cohorts_equal_pandas(cdnow_ws):
    table, average, path = cohorts(Project.at(cdnow_ws), "month", "first_purchase", "purchase")
    ev = workspace_events(duckdb_connection(), cdnow_ws).execute()
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    assert_matches(table, reference(ev, "month", "first_purchase", "purchase", KpiSettings().activity.exclude))
    # CDNOW: the Q1-1997 cohort (three monthly cohorts), everyone buys in month 0
    assert sorted(table["cohort"].unique())[:3] == [pd.Timestamp(f"1997-0{m}-01").date() for m in (1, 2, 3)]
    assert (table.loc[table["k"] == 0, "retention"] == 1.0).all()
    first = table[(table["cohort"] == pd.Timestamp("1997-01-01").date())].set_index("k")
    assert first["retention_on_or_after"].is_monotonic_decreasing
    assert (first["retention_on_or_after"] >= first["retention"]).all()
    # the size-weighted mean skips cohorts that have not reached k and incomplete cells
    k1 = table[(table["k"] == 1) & table["complete"]]
    assert average.set_index("k").loc[1, "retention"] == pytest.approx(k1["retained"].sum() / k1["size"].sum())
    assert path.exists() and pd.read_parquet(path).shape[0] == len(table)


def test_weekly_activity_cohorts_of_a_simulation_equal_pandas(simulated_workspace):
    ws = simulated_workspace("cohorts", SimulateSettings(users=300, days=90, seed=8, horizons=[7]))
    events = workspace_events(duckdb_connection(), ws)
    table, average, meta = compute_cohorts(events, None, KpiSettings(), "week", "first_active", "active")
    ev = events.execute()
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    assert_matches(table, reference(ev, "week", "first_active", "active", KpiSettings().activity.exclude))
    last = table.groupby("cohort")["k"].max()
    assert not table.loc[table["k"] == table["cohort"].map(last), "complete"].all() or meta["last_complete_day"].weekday() == 6
    done = table[(table["k"] == 0) & table["complete"]]
    assert average["users"].iloc[0] == done["size"].sum() < table.loc[table["k"] == 0, "size"].sum()


def test_cohorts_command_prints_the_averages_and_refuses_unknown_choices(cdnow_ws, churnkit):
    proc = churnkit("--workspace", str(cdnow_ws.root), "cohorts", "--grain", "month")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "first purchase month cohorts, purchase retention" in text and "100.0%" in text
    table = cdnow_ws.cohort_path("first_purchase", "purchase", "month")
    for col in ("retention", "retention_on_or_after", "revenue_per_user"):
        image = table.parent / f"{table.stem}_{col}.png"
        assert image.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and image.stat().st_size > 10_000, col
    assert "heatmaps:" in text
    bad = churnkit("--workspace", str(cdnow_ws.root), "cohorts", "--start", "birthday")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "first_purchase" in bad.stderr
