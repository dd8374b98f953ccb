"""KPI tables equal an independent pandas computation, at every grain, in a business time
zone with daylight saving, with order lines and refunds; and DuckDB equals Spark."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.config import ChurnkitConfig, KpiSettings, SimulateSettings
from churnkit.flows.kpi import change, compute_kpis, kpis
from churnkit.flows.project import Project
from churnkit.io.warehouse import duckdb_connection, workspace_events
from churnkit.monitor.kpis import GRAINS, KPIS

PERIOD = {"day": "D", "week": "W-SUN", "month": "M"}


def stage_moves(e: pd.DataFrame, silent: float, churned: float, last_day: pd.Timestamp) -> pd.DataFrame:
    """(user_id, day, move) for every lifecycle move, walking each user's active days."""
    rows = []
    for user, days in e[e["act"]].groupby("user_id")["day"]:
        days = sorted(set(days))
        for d, n in zip(days, [*days[1:], None], strict=True):
            gap = None if n is None else (n - d).days
            for move, after in (("went_silent", int(np.floor(silent)) + 1), ("churned", int(np.ceil(churned)))):
                at = d + pd.Timedelta(days=after)
                if (gap is None or gap >= after) and at <= last_day:
                    rows.append((user, at, move))
            if gap is not None and gap >= churned:
                rows.append((user, n, "resurrected"))
            elif gap is not None and gap > silent:
                rows.append((user, n, "reactivated"))
    return pd.DataFrame(rows, columns=["user_id", "day", "move"])


def reference(ev: pd.DataFrame, tz: str, exclude: list[str], grain: str, cuts: dict) -> pd.DataFrame:
    """Every KPI from the raw events with pandas alone (no shared code with the package)."""
    e = ev.copy()
    e["day"] = e["ts"].dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    e["period"] = e["day"].dt.to_period(PERIOD[grain]).dt.start_time
    e["act"] = e["event"].notna() & ~e["event"].isin(exclude)
    first_day, last_day = e["day"].min(), e["day"].max()
    first_active = e[e["act"]].groupby("user_id")["day"].min().dt.to_period(PERIOD[grain]).dt.start_time
    moves = stage_moves(e, cuts["silent_min_days"], cuts["churned_days"], last_day)
    moves["period"] = moves["day"].dt.to_period(PERIOD[grain]).dt.start_time
    rows = []
    for period, g in e.groupby("period"):
        moved = {m: moves.loc[(moves["period"] == period) & (moves["move"] == m), "user_id"].nunique()
                 for m in ("resurrected", "reactivated", "went_silent", "churned")}
        active = set(g.loc[g["act"], "user_id"])
        buy = g[g["event"] == "purchase"]
        orders = sum(d["order_id"].nunique() + d["order_id"].isna().sum() for _, d in buy.groupby(["user_id", "day"]))
        viewed, carted = (set(g.loc[g["event"] == name, "user_id"]) for name in ("view", "add_to_cart"))
        bought = set(buy["user_id"])
        revenue = buy["amount"].sum() - g.loc[g["event"] == "refund", "amount"].sum()
        new = {u for u in active if first_active[u] == period}
        length = (period + (pd.offsets.MonthBegin(1) if grain == "month" else pd.Timedelta(days=7 if grain == "week" else 1)))
        days = (min(length, last_day + pd.Timedelta(days=1)) - max(period, first_day)).days
        user_days = g.loc[g["act"], ["user_id", "day"]].drop_duplicates().shape[0]
        div = lambda a, b: a / b if b else np.nan
        sent, opened = (g["event"] == "push_sent").sum(), (g["event"] == "push_open").sum()
        rows.append({
            "period": period.date(), "days": days, "complete": length <= last_day + pd.Timedelta(days=1),
            "active_users": len(active), "new_users": len(new), "returning_users": len(active) - len(new),
            **{f"{m}_users": n for m, n in moved.items()},
            "avg_daily_active": user_days / days, "stickiness": div(user_days / days, len(active)),
            "buyers": len(bought), "paying_rate": div(len(bought), len(active)), "orders": orders,
            "revenue": revenue, "arpu": div(revenue, len(active)), "arppu": div(revenue, len(bought)),
            "aov": div(revenue, orders), "orders_per_buyer": div(orders, len(bought)),
            "view_users": len(viewed), "cart_users": len(carted),
            "view_to_cart": div(len(viewed & carted), len(viewed)),
            "cart_to_purchase": div(len(carted & bought), len(carted)),
            "push_open_rate": div(opened, sent),
        })
    return pd.DataFrame(rows)


def assert_matches(got: pd.DataFrame, want: pd.DataFrame) -> None:
    got = got[got["period"].isin(want["period"])].reset_index(drop=True)
    assert list(got["period"]) == list(want["period"])
    assert (got["days"].to_numpy() == want["days"].to_numpy()).all()
    assert (got["complete"].to_numpy() == want["complete"].to_numpy()).all()
    for k in KPIS:
        np.testing.assert_allclose(got[k.name].to_numpy("float64"), want[k.name].to_numpy("float64"),
                                   rtol=1e-9, atol=1e-9, equal_nan=True, err_msg=k.name)


def order_lines() -> pd.DataFrame:
    """Two users around a DST change in New York, with order lines, refunds and pushes."""
    rows = [
        ("a", "2024-03-09T04:30:00Z", "view", None, None),       # 23:30 on the 8th in New York
        ("a", "2024-03-09T05:10:00Z", "add_to_cart", None, None),
        ("a", "2024-03-09T05:20:00Z", "purchase", 10.0, "o1"),   # one order of two lines
        ("a", "2024-03-09T05:20:00Z", "purchase", 5.0, "o1"),
        ("a", "2024-03-11T03:30:00Z", "purchase", 7.0, None),    # 23:30 on the 10th (EDT since 2am)
        ("a", "2024-03-12T12:00:00Z", "refund", 5.0, "o1"),
        ("b", "2024-03-10T12:00:00Z", "push_sent", None, None),  # sent, not activity
        ("b", "2024-03-10T13:00:00Z", "push_open", None, None),
        ("b", "2024-03-18T13:00:00Z", "session", None, None),
        ("b", "2024-04-02T13:00:00Z", "view", None, None),
        ("c", "2024-03-20T13:00:00Z", "push_sent", None, None),  # never active
    ]
    df = pd.DataFrame(rows, columns=["user_id", "ts", "event", "amount", "order_id"])
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    return df


@pytest.mark.parametrize("tz", ["UTC", "America/New_York"])
def test_kpis_on_order_lines_and_refunds_equal_pandas(tz):
    import ibis

    ev = order_lines()
    con = duckdb_connection()
    table = con.create_table("ev", ibis.memtable(ev.assign(
        channel=None, category=None, campaign_id=None, variant=None).astype(
        {"channel": "string", "category": "string", "campaign_id": "string", "variant": "string"})))
    settings = KpiSettings(time_zone=tz)
    tables, meta = compute_kpis(table, settings)
    for grain in GRAINS:
        assert_matches(tables[grain], reference(ev, tz, settings.activity.exclude, grain, meta["stage_cuts"]))
    day = tables["day"].set_index("period")
    assert day.loc[pd.Timestamp("2024-03-09").date(), "orders"] == 1  # the two lines of o1: one order
    # 23:30 in New York is the evening before in the business day, the same UTC morning otherwise
    assert (pd.Timestamp("2024-03-08").date() in day.index) == (tz != "UTC")
    assert tables["month"]["revenue"].sum() == pytest.approx(17.0)  # 15 + 7 - 5 refunded
    assert meta["time_zone"] == tz and meta["definitions"]["aov"]["unit"] == "currency"


@pytest.fixture(scope="module")
def workspace(simulated_workspace):
    return simulated_workspace("kpi", SimulateSettings(users=400, days=120, seed=5, horizons=[7]))


def test_kpis_of_a_simulated_workspace_equal_pandas_and_are_written(workspace):
    config = ChurnkitConfig.model_validate({"kpi": {"time_zone": "Europe/London"}})
    project = Project.at(workspace, config)
    out = kpis(project)
    ev = workspace_events(duckdb_connection(), workspace).execute()
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    for grain in GRAINS:
        assert_matches(out.tables[grain], reference(ev, "Europe/London", project.config.kpi.activity.exclude, grain,
                                                    out.meta["stage_cuts"]))
        saved = pd.read_parquet(out.paths[grain])
        pd.testing.assert_frame_equal(saved, out.tables[grain].astype(saved.dtypes.to_dict()), check_dtype=False)
    assert out.tables["day"]["active_users"].sum() > 1000
    assert not out.tables["month"]["complete"].iloc[-1] or out.tables["month"]["days"].iloc[-1] >= 28
    c = change(out.tables["week"], "active_users", "week")
    assert c["value"] is not None and c["previous"] is not None and c["year_ago"] is None  # 120 days of data


ADDITIVE = [k.name for k in KPIS if k.additive]


def test_kpis_by_segment_partition_the_totals_and_equal_pandas_per_attribute(workspace):
    project = Project.at(workspace, ChurnkitConfig())
    out = kpis(project, ("day", "week"))
    ev = workspace_events(duckdb_connection(), workspace).execute()
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    by = out.segments["week"]
    assert {"platform", "region", "lifecycle_stage", "rfm_tier"} <= set(by["dimension"])
    assert out.segment_paths["week"].exists() and out.segment_paths["day"].exists()
    for dim, g in by.groupby("dimension"):
        # every user is in one segment of a dimension in a period: additive KPIs add up to the totals
        summed = g.groupby("period")[ADDITIVE].sum().reset_index()
        total = out.tables["week"][["period", *ADDITIVE]]
        np.testing.assert_allclose(summed[ADDITIVE].to_numpy(), total[ADDITIVE].to_numpy(), err_msg=dim)
    # an attribute's segment equals the pandas reference on that segment's users alone
    users = workspace_users_frame(workspace)
    exclude = project.config.kpi.activity.exclude
    for platform in sorted(users["platform"].dropna().unique()):
        mine = set(users.loc[users["platform"] == platform, "user_id"])
        want = reference(ev[ev["user_id"].isin(mine)], "UTC", exclude, "week", out.meta["stage_cuts"])
        got = by[(by["dimension"] == "platform") & (by["segment"] == platform)]
        assert_matches(got.drop(columns=["dimension", "segment"]).reset_index(drop=True),
                       want[want["period"].isin(got["period"])].reset_index(drop=True))
    # at day grain a user entering churned, or back from it, is churned at the day's start
    day = out.segments["day"]
    stage = day[day["dimension"] == "lifecycle_stage"]
    for kpi in ("churned_users", "resurrected_users"):
        assert stage.loc[stage["segment"] != "churned", kpi].sum() == 0, kpi
        assert stage.loc[stage["segment"] == "churned", kpi].sum() == out.tables["day"][kpi].sum() > 0
    assert set(stage["segment"]) <= {"new", "active", "silent", "churned", "recalled"}


def workspace_users_frame(workspace) -> pd.DataFrame:
    from churnkit.io.warehouse import workspace_users

    return workspace_users(duckdb_connection(), workspace).execute()


@pytest.mark.slow
def test_kpis_are_the_same_on_duckdb_and_spark(workspace, spark_backend):
    from churnkit.flows.kpi import compute_segments, kpi_source
    from churnkit.io.warehouse import workspace_users

    settings = KpiSettings(time_zone="America/New_York")
    d_tables, d_meta = compute_kpis(workspace_events(duckdb_connection(), workspace), settings)
    s_tables, s_meta = compute_kpis(workspace_events(spark_backend, workspace), settings)
    assert d_meta["data"] == s_meta["data"]
    dims = ["platform", "lifecycle_stage", "rfm_tier"]
    sources = [kpi_source(workspace_events(con, workspace), settings, workspace_users(con, workspace))
               for con in (duckdb_connection(), spark_backend)]
    d_seg, s_seg = (compute_segments(src, dims, ("week",))[0]["week"] for src in sources)
    pairs = [(d_tables[g], s_tables[g]) for g in GRAINS] + [(d_seg, s_seg)]
    for a, b in pairs:
        assert list(a["period"]) == list(b["period"]) and (a["complete"] == b["complete"]).all()
        for k in KPIS:
            np.testing.assert_allclose(a[k.name].to_numpy("float64"), b[k.name].to_numpy("float64"),
                                       rtol=1e-12, atol=1e-9, equal_nan=True, err_msg=k.name)


def test_kpi_command_writes_the_tables_and_says_what_moved(workspace, churnkit):
    proc = churnkit("--workspace", str(workspace.root), "kpi")
    assert proc.returncode == 0, proc.stderr
    text = " ".join(proc.stdout.split())
    assert "KPIs from" in text and "active = any event but push_sent, refund" in text
    for grain in GRAINS:
        assert f"kpis_{grain}.parquet" in text.replace(" ", "") and workspace.kpi_path(grain).exists()
    assert "vs previous" in text and "period in progress, not shown" in text
    assert "by segment (region, platform" in text and "stage moves: silent after" in text
    assert workspace.kpi_path("week", segments=True).exists()
    bad = churnkit("--workspace", str(workspace.root), "kpi", "--grain", "year")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "'year'" in bad.stderr
