"""Alert rules on the simulator: detection rate and delay for injected incidents, and false
alarms per KPI-month on clean stretches.

One simulated log (seeded) is copied many times; each copy gets one incident at a random
day after the baseline's warm-up (8 weeks):

- ``platform_day``: for one day, 40% of one platform's users (the largest) lose every event;
- ``region_week``: for seven days, the purchases of one region are halved (every second
  purchase of its users dropped);
- ``step``: from one day on, 25% of all users' events are gone for good.

The default alert rules run on each copy's daily KPI tables (totals; segment rules are a
later step). An incident is detected when a rule on its KPI opens an alert on a day inside
it (delay: days from the incident's first day); a false alarm is an alert on a day of the
clean log (no incident) on or after the warm-up, counted per KPI-month judged.

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
from churnkit.flows.kpi import compute_kpis
from churnkit.io.warehouse import duckdb_connection
from churnkit.monitor.anomalies import breaches
from churnkit.monitor.kpis import KPIS
from churnkit.simulate import simulate

UNITS = {k.name: k.unit for k in KPIS}
WARMUP_DAYS = 8 * 7
KPI_OF = {"platform_day": "active_users", "region_week": "orders", "step": "active_users"}


def inject(ev: pd.DataFrame, users: pd.DataFrame, kind: str, day: pd.Timestamp, rng: np.random.Generator) -> pd.DataFrame:
    d = ev["ts"].dt.floor("D")
    if kind == "platform_day":
        platform = users["platform"].value_counts().index[0]
        pool = users.loc[users["platform"] == platform, "user_id"]
        lost = set(pool.sample(frac=0.4, random_state=int(rng.integers(1 << 31))))
        return ev[~((d == day) & ev["user_id"].isin(lost))]
    if kind == "region_week":
        region = users["region"].value_counts().index[0]
        members = set(users.loc[users["region"] == region, "user_id"])
        hit = (d >= day) & (d < day + pd.Timedelta(days=7)) & (ev["event"] == "purchase") & ev["user_id"].isin(members)
        drop = ev.index[hit][::2]
        return ev.drop(index=drop)
    lost = set(users["user_id"].sample(frac=0.25, random_state=int(rng.integers(1 << 31))))
    return ev[~((d >= day) & ev["user_id"].isin(lost))]


def alerts_on(ev: pd.DataFrame, rules) -> list:
    con = duckdb_connection()
    table = con.create_table("ev", ibis.memtable(ev))
    tables, _ = compute_kpis(table, KpiSettings(), ("day", "week"))
    return [b for r in rules for b in breaches(tables[r.grain], r, UNITS[r.kpi])]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=200)
    ap.add_argument("--copies", type=int, default=20)
    ap.add_argument("--seed", type=int, default=3)
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
    first = ev["ts"].min().floor("D")
    days = pd.date_range(first + pd.Timedelta(days=WARMUP_DAYS), ev["ts"].max().floor("D") - pd.Timedelta(days=8), freq="D")
    clean = alerts_on(ev, rules)
    judged = {r.name: (len(days) + 8) / 30.0 for r in rules}  # KPI-months judged after the warm-up
    false = {r.name: sum(1 for b in clean if b.rule == r.name and pd.Timestamp(b.period) >= days[0].tz_localize(None)) for r in rules}
    rng = np.random.default_rng(args.seed)
    rows = []
    for kind, kpi in KPI_OF.items():
        for _ in range(args.copies):
            day = days[rng.integers(len(days))]
            found = alerts_on(inject(ev, users, kind, day, rng), rules)
            start = day.tz_localize(None).date()
            span = 1 if kind == "platform_day" else 7 if kind == "region_week" else 30
            hits = sorted(pd.Timestamp(b.period).date() for b in found if b.kpi == kpi and b.rule.endswith("day_seasonal")
                          and start <= pd.Timestamp(b.period).date() < start + dt.timedelta(days=span))
            rows.append({"incident": kind, "day": start, "detected": bool(hits),
                         "delay_days": (hits[0] - start).days if hits else np.nan})
    res = pd.DataFrame(rows)
    print(f"simulation: {args.users} users, {args.days} days, {len(ev):,} events; {args.copies} copies per incident;"
          f" {time.perf_counter() - t0:.0f} s")
    print(res.groupby("incident").agg(copies=("detected", "size"), detection_rate=("detected", "mean"),
                                      mean_delay_days=("delay_days", "mean")).to_string())
    print("false alarms per KPI-month on the clean log (after the warm-up):")
    for r in rules:
        print(f"  {r.name}: {false[r.name]} alert(s) over {judged[r.name]:.1f} months = {false[r.name] / judged[r.name]:.3f}")


if __name__ == "__main__":
    main()
