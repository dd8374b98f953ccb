"""Alert rules on the simulator: detection rate and delay for injected incidents, and false
alarms per KPI-month on clean stretches.

One simulated log (seeded) is copied many times; each copy gets one incident at a random
day after the baseline's warm-up (8 weeks):

- ``platform_day``: for one day, 40% of one platform's users (the largest) lose every event;
- ``region_week``: for seven days, the purchases of one region are halved (every second
  purchase of its users dropped);
- ``step``: from one day on, 25% of all users' events are gone for good.

The default alert rules (``alerts.rules``: totals, and per user attribute for active users
and weekly orders) run on each copy's daily and weekly KPI tables, totals and by platform
and region. An incident is detected when a rule on its KPI opens an alert on a period that
overlaps it, on the total or on the hit segment (delay: days from the incident's first day
to the end of the first alerting period, when the alert can be raised); a false alarm is an
alert of the clean log (no incident) after the warm-up, counted per KPI-month judged (each
segment series counts as one KPI).

    .venv/bin/python bench/bench_alerts.py --users 3000 --days 200 --copies 20
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import ibis
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from churnkit.config import AlertSettings, KpiSettings, SimulateSettings
from churnkit.flows.kpi import compute_kpis, compute_segments, kpi_source
from churnkit.io.warehouse import duckdb_connection
from churnkit.monitor import ledger as L
from churnkit.monitor.anomalies import judge
from churnkit.monitor.kpis import KPIS
from churnkit.simulate import simulate

UNITS = {k.name: k.unit for k in KPIS}
WARMUP_DAYS = 8 * 7 + 28  # the seasonal baseline: 8 same weekdays, each against the 28 days before it
KPI_OF = {"platform_day": "active_users", "region_week": "orders", "step": "active_users"}


DIMENSIONS = ["platform", "region"]


def inject(ev: pd.DataFrame, users: pd.DataFrame, kind: str, day: pd.Timestamp,
           rng: np.random.Generator) -> tuple[pd.DataFrame, str]:
    """The log with one incident from ``day``, and the segment it hit ("all": everyone)."""
    d = ev["ts"].dt.floor("D")
    if kind == "platform_day":
        platform = users["platform"].value_counts().index[0]
        pool = users.loc[users["platform"] == platform, "user_id"]
        lost = set(pool.sample(frac=0.4, random_state=int(rng.integers(1 << 31))))
        return ev[~((d == day) & ev["user_id"].isin(lost))], f"platform={platform}"
    if kind == "region_week":
        region = users["region"].value_counts().index[0]
        members = set(users.loc[users["region"] == region, "user_id"])
        hit = (d >= day) & (d < day + pd.Timedelta(days=7)) & (ev["event"] == "purchase") & ev["user_id"].isin(members)
        drop = ev.index[hit][::2]
        return ev.drop(index=drop), f"region={region}"
    lost = set(users["user_id"].sample(frac=0.25, random_state=int(rng.integers(1 << 31))))
    return ev[~((d >= day) & ev["user_id"].isin(lost))], "all"


def alerts_on(ev: pd.DataFrame, users: pd.DataFrame, rules) -> tuple[list, dict]:
    """Every rule's breaches on the log, and how many series each rule judges."""
    con = duckdb_connection()
    table = con.create_table("ev", ibis.memtable(ev))
    people = con.create_table("users", ibis.memtable(users[["user_id", *DIMENSIONS]]))
    settings = KpiSettings(segment_by=DIMENSIONS)
    source = kpi_source(table, settings, people)
    tables, _ = compute_kpis(table, settings, ("day", "week"), source=source)
    segments, _ = compute_segments(source, DIMENSIONS, ("day", "week"))
    found = judge(rules, tables, segments, UNITS, {k.name: k.additive for k in KPIS})
    series = {r.name: segments[r.grain][["dimension", "segment"]].drop_duplicates().shape[0] if r.segment_by else 1
              for r in rules}
    return found, series


def _end(period: dt.date, grain: str) -> dt.date:
    return period + dt.timedelta(days=7 if grain == "week" else 1)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=200)
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--verbose", action="store_true", help="say why each missed incident was missed")
    args = ap.parse_args()
    t0 = time.perf_counter()
    sim = simulate(SimulateSettings(users=args.users, days=args.days, seed=args.seed, horizons=[7]))
    ev = sim.events().to_pandas()
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    for col in ("order_id", "category", "channel", "campaign_id", "variant"):
        if col not in ev.columns:
            ev[col] = pd.Series([None] * len(ev), dtype="string")
    users = sim.users()
    rules = AlertSettings().rules
    grain_of = {r.name: r.grain for r in rules}
    first = ev["ts"].min().floor("D")
    days = pd.date_range(first + pd.Timedelta(days=WARMUP_DAYS), ev["ts"].max().floor("D") - pd.Timedelta(days=8), freq="D")
    clean, series = alerts_on(ev, users, rules)
    months = (len(days) + 8) / 30.0  # months judged after the warm-up
    start0 = days[0].tz_localize(None).date()
    # false alarms are alerts (episodes: consecutive breaching periods of a rule and segment)
    episodes = L.episodes([b for b in clean if b.period >= start0], grain_of)
    false = {r.name: sum(1 for e in episodes if e["rule"] == r.name) for r in rules}
    for e in episodes:
        print(f"  clean-log alert: {e['id']} ({e['periods']} {e['grain']}s) observed {e['observed']:.0f}"
              f" expected {e['expected']:.0f}")
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind, kpi in KPI_OF.items():
        for _ in range(args.copies):
            day = days[rng.integers(len(days))]
            hurt, segment = inject(ev, users, kind, day, rng)
            found, _ = alerts_on(hurt, users, rules)
            start = day.tz_localize(None).date()
            span = 1 if kind == "platform_day" else 7 if kind == "region_week" else 30
            stop = start + dt.timedelta(days=span)
            hits = [b for b in found if b.kpi == kpi and b.segment in ("all", segment)
                    and b.period < stop and _end(b.period, grain_of[b.rule]) > start]
            # when the alert can be raised: the end of the first alerting period
            ready = sorted(_end(b.period, grain_of[b.rule]) for b in hits)
            if not hits and args.verbose:
                near = [b for b in found if b.kpi == kpi and b.segment == segment]
                print(f"  missed {kind} on {start} ({start:%a}) in {segment}; that segment's alerts: "
                      f"{[(str(b.period), round(b.observed), round(b.low)) for b in near][:4]}")
            rows.append({"incident": kind, "day": start, "detected": bool(hits),
                         "on_total": any(b.segment == "all" for b in hits),
                         "on_segment": any(b.segment == segment for b in hits),
                         "delay_days": (ready[0] - start).days - 1 if hits else np.nan})
    res = pd.DataFrame(rows)
    print(f"simulation: {args.users} users, {args.days} days, {len(ev):,} events; {args.copies} copies per incident;"
          f" {time.perf_counter() - t0:.0f} s")
    print(res.groupby("incident").agg(copies=("detected", "size"), detected=("detected", "mean"),
                                      on_total=("on_total", "mean"), on_segment=("on_segment", "mean"),
                                      mean_delay_days=("delay_days", "mean")).to_string())
    print("false alarms per KPI-month on the clean log (after the warm-up; each segment series is a KPI):")
    for r in rules:
        kpi_months = months * series[r.name]
        print(f"  {r.name}: {false[r.name]} alert(s) over {kpi_months:.1f} KPI-months = {false[r.name] / kpi_months:.3f}")


if __name__ == "__main__":
    main()
