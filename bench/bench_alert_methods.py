"""The alert methods on simulated KPI series with known incidents: false alarms per
KPI-month on clean series, and how often (and how fast) an incident is found.

Series: daily counts with a weekly pattern (weekends at 70%) and Poisson noise, 150 days.

- ``seasonal`` and ``stl`` at ``k`` 3.5 and 4.5, level 500: a day at 60%, and a step to 70%
  from day 120 (found on its first day);
- ``cusum`` at ``k`` (h) 5 and 6, levels 16 and 500: a week at half (binomial thinning) from
  day 110 (found within the week; delay from its first day).

False alarms are alerts (episodes of consecutive breaching days), after each method's
warm-up. These are the figures README "Alerts" and bench/RESULTS.md quote.

    .venv/bin/python bench/bench_alert_methods.py --series 60
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from churnkit.config import AlertRule
from churnkit.monitor import ledger as L
from churnkit.monitor.anomalies import STL_ERRORS, breaches

DAYS = 150


def series(seed: int, level: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    period = [dt.date(2024, 1, 1) + dt.timedelta(days=i) for i in range(DAYS)]
    weekly = np.array([1.0, 1.0, 1.0, 1.0, 1.0, 0.7, 0.7])[[d.weekday() for d in period]]
    return pd.DataFrame({"period": period, "complete": True, "kpi": rng.poisson(level * weekly).astype(float)})


def alerts(s: pd.DataFrame, rule: AlertRule) -> int:
    return len(L.episodes(breaches(s, rule, "users"), {rule.name: "day"}))


def bands(n: int) -> list[dict]:
    rows = []
    for method in ("seasonal", "stl"):
        for k in (3.5, 4.5):
            rule = AlertRule(kpi="kpi", method=method, k=k, critical_k=k + 1.5)
            warmup = 7 * rule.weeks + (28 if method == "seasonal" else STL_ERRORS // 2)
            false = day = step = 0
            for seed in range(n):
                s = series(seed, 500.0)
                false += alerts(s, rule)
                s.loc[100, "kpi"] *= 0.6
                s.loc[120:, "kpi"] *= 0.7
                found = {b.period for b in breaches(s, rule, "users")}
                day += s.loc[100, "period"] in found
                step += s.loc[120, "period"] in found
            rows.append({"method": method, "k": k, "false_per_kpi_month": false / (n * (DAYS - warmup) / 30),
                         "lost_day_found": day / n, "step_found_on_day_1": step / n})
    return rows


def cusum(n: int) -> list[dict]:
    rows = []
    for h in (5.0, 6.0):
        rule = AlertRule(kpi="kpi", method="cusum", k=h, critical_k=2 * h, direction="down")
        for level in (16.0, 500.0):
            false = found = 0
            delays = []
            for seed in range(n):
                s = series(seed, level)
                false += alerts(s, rule)
                week = s.index[110:117]
                s.loc[week, "kpi"] = np.random.default_rng(seed).binomial(s.loc[week, "kpi"].astype(int), 0.5)
                inside = sorted(b.period for b in breaches(s, rule, "users")
                                if s.loc[110, "period"] <= b.period <= s.loc[116, "period"])
                if inside:
                    found += 1
                    delays.append((inside[0] - s.loc[110, "period"]).days)
            rows.append({"method": "cusum", "k": h, "level": level,
                         "false_per_kpi_month": false / (n * (DAYS - 7 * rule.weeks - 28) / 30),
                         "half_week_found": found / n, "mean_delay_days": float(np.mean(delays)) if delays else np.nan})
    return rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--series", type=int, default=60, help="series per setting (bands); 150 for CUSUM")
    args = ap.parse_args()
    t0 = time.perf_counter()
    print(pd.DataFrame(bands(args.series)).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(pd.DataFrame(cusum(max(args.series, 150))).to_string(index=False, float_format=lambda v: f"{v:.4f}"))
    print(f"{time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
