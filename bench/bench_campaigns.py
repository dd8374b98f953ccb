"""Campaign A/B statistics on the simulator, against the truth it writes.

Each simulation runs randomised retention campaigns (push or coupon, treatment vs control)
and writes every assigned user's true individual effect (``assignments.parquet``). Per
campaign whose 28-day window the data covers, the evaluation's 95% intervals for
``retained`` (any activity in the window) and ``converted`` (a purchase) are compared with
the true average effect of the assigned users (the mean of their individual effects: minus
``effect_churn`` and ``effect_purchase``), with and without CUPED (the pre-period metric).
A/A: each campaign's control users split at random into two halves, several times; the
share of splits with p < 0.05 is the false-positive rate.

    .venv/bin/python bench/bench_campaigns.py --seeds 12 --users 3000 --days 240
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import ibis
import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from churnkit.campaigns.abtest import results_table
from churnkit.campaigns.outcomes import outcomes
from churnkit.config import SimulateSettings
from churnkit.flows.uplift import TRUE_EFFECT
from churnkit.io.warehouse import duckdb_connection
from churnkit.simulate import simulate

WINDOW = 28
TRUTH = {m: TRUE_EFFECT[m] for m in ("retained", "converted")}
"""The simulator's individual-effect column (and sign) of each metric read here: the uplift flow's mapping."""
EXCLUDE = ["push_sent", "refund"]


def one_simulation(seed: int, users: int, days: int, every: int, splits: int) -> tuple[list[dict], list[dict]]:
    sim = simulate(SimulateSettings(users=users, days=days, seed=seed, horizons=[7], campaign_every_days=every,
                                    campaign_horizon_days=WINDOW, observable=False))
    ev = sim.events().to_pandas()
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    if "order_id" not in ev.columns:
        ev["order_id"] = pd.Series([None] * len(ev), dtype="string")
    a = sim.assignments.copy()
    if "assigned_ts" not in a.columns:
        sends = sim.plan.frame(sim.start)[["campaign_id", "send_ts"]]
        a = a.merge(sends, on="campaign_id").rename(columns={"send_ts": "assigned_ts"})
    last = ev["ts"].max()
    con = duckdb_connection()
    et = con.create_table("ev", ibis.memtable(ev))
    at = con.create_table("a", ibis.memtable(a[["user_id", "campaign_id", "variant", "assigned_ts"]]))
    out = outcomes(et, at, WINDOW, None, EXCLUDE).execute()
    out = out.merge(a[["campaign_id", "user_id", "effect_churn", "effect_purchase"]], on=["campaign_id", "user_id"])
    rows, aa = [], []
    rng = np.random.default_rng(seed)
    for cid, g in out.groupby("campaign_id"):
        if pd.to_datetime(g["window_end"], utc=True).max() > last or g["variant"].nunique() < 2:
            continue  # the window is not over yet
        for cuped in (False, True):
            cov = {m: f"pre_{m}" for m in TRUTH} if cuped else None
            res = results_table(cid, g, list(TRUTH), "control", covariates=cov)
            for r in res.itertuples():
                col, sign = TRUTH[r.metric]
                true = sign * g[col].mean()
                rows.append({"seed": seed, "campaign": cid, "metric": r.metric, "cuped": cuped, "n": r.n + r.control_n,
                             "true": true, "effect": r.effect, "width": r.ci_high - r.ci_low,
                             "covered": r.ci_low <= true <= r.ci_high, "srm_failed": r.srm_failed})
        control = g[g["variant"] == "control"].reset_index(drop=True)
        for _ in range(splits):
            half = control.assign(variant=np.where(rng.random(len(control)) < 0.5, "a", "b"))
            res = results_table(cid, half, list(TRUTH), "a")
            aa += [{"metric": r.metric, "p": r.p_value} for r in res.itertuples()]
    return rows, aa


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seeds", type=int, default=12)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=240)
    ap.add_argument("--every", type=int, default=14, help="days between campaigns")
    ap.add_argument("--splits", type=int, default=10, help="A/A splits per campaign")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows, aa = [], []
    for seed in range(1, args.seeds + 1):
        r, a = one_simulation(seed, args.users, args.days, args.every, args.splits)
        rows += r
        aa += a
    res, aa = pd.DataFrame(rows), pd.DataFrame(aa)
    campaigns = res[["seed", "campaign"]].drop_duplicates().shape[0]
    print(f"{args.seeds} simulations x {args.users} users x {args.days} days; {campaigns} campaigns with a complete "
          f"{WINDOW}-day window; {time.perf_counter() - t0:.0f} s")
    summary = res.groupby(["metric", "cuped"]).agg(intervals=("covered", "size"), coverage=("covered", "mean"),
                                                  mean_width=("width", "mean"), mean_true=("true", "mean"),
                                                  mean_estimate=("effect", "mean"))
    print(summary.to_string())
    print(f"SRM failures: {int(res.loc[~res['cuped'], 'srm_failed'].sum())} of {campaigns * len(TRUTH)} rows")
    fp = aa.groupby("metric")["p"].agg(splits="size", false_positive_rate=lambda p: float((p < 0.05).mean()))
    print("A/A (control split in halves):")
    print(fp.to_string())


if __name__ == "__main__":
    main()
