"""Benchmark the feature build (all families, attribute levels) at 1 and 12 cutoffs.

Data (generated once, in bench/out/features/, gitignored): ``churnkit.simulate`` logs over
365 days, 7,000 users (~1M events) and 70,000 users (~10M events). Each case runs in a
fresh child process (this script re-invoked with ``--case``), so peak RSS is the child's own
(``ru_maxrss``: Python, DuckDB and Arrow together) and peaks of different cases never mix:

- ``features``: ``feature_frame`` over ``con.read_parquet(events)`` on
  ``duckdb_connection(memory_limit, threads)``, written to Parquet with ``con.to_parquet``;
- ``floor``: one DuckDB pass ``GROUP BY user_id`` with count / sum / max over the same
  Parquet, written the same way, under the same limits (the least any feature build pays);
- ``pandas``: the same families written plainly with pandas groupby: read the Parquet, then
  for each cutoff keep ``ts < cutoff`` and aggregate; written to Parquet with pyarrow.

Cutoffs: 1 cutoff = the day after the last event (all history); 12 cutoffs = that day and
the 11 before it, 30 days apart. ``--check`` compares the pandas and churnkit outputs of the
1-cutoff cases column by column (untimed), to show they compute the same quantities.

    .venv/bin/python bench/bench_features.py                       # 1M and 10M, all cases
    .venv/bin/python bench/bench_features.py --sizes 1m --check
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

from machine import cpu_model  # bench/machine.py (the script's own folder is on sys.path)

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "out" / "features"
sys.path.insert(0, str(ROOT / "src"))

from churnkit.config import ActivityEvents, FeatureSelection, SimulateSettings
from churnkit.features.build import discover_levels, feature_frame
from churnkit.features.context import cutoff_table
from churnkit.features.families.attributes import level_feature_name
from churnkit.flows.simulate import write_simulation
from churnkit.io.warehouse import contract_events, duckdb_connection
from churnkit.simulate import simulate

SIZES = {"1m": 7_000, "10m": 70_000}
"""Simulated users per size: 365 days of ~140 events per user a year."""
DAYS = 365
STEP_DAYS = 30


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# --------------------------------------------------------------------------- data


def data_dir(size: str) -> Path:
    return OUT / f"sim_{SIZES[size]}"


def prepare(size: str) -> dict:
    """Simulate once; later runs reuse the files (``simulation.json`` says they are complete)."""
    d = data_dir(size)
    meta = d / "simulation.json"
    if not meta.exists():
        t0 = time.perf_counter()
        params = SimulateSettings(users=SIZES[size], days=DAYS, seed=1, horizons=[7], cutoff_step_days=364, observable=False)
        write_simulation(simulate(params), d)
        print(f"[{size}] simulated {SIZES[size]:,} users in {time.perf_counter() - t0:.0f} s -> {d}", flush=True)
    info = json.loads(meta.read_text())
    end = dt.date.fromisoformat(info["period"]["end_exclusive"])
    return {"events": info["events"], "users": info["users"], "end": end}


def cutoffs_for(end: dt.date, n: int) -> list[dt.date]:
    return sorted(end - dt.timedelta(days=STEP_DAYS * k) for k in range(n))


# --------------------------------------------------------------------------- cases (child)


def case_floor(events: Path, out: Path, memory_limit: str, threads: int) -> None:
    con = duckdb_connection(memory_limit=memory_limit, threads=threads)
    t = con.read_parquet(str(events))
    expr = t.group_by("user_id").aggregate(n=t.count(), revenue=t.amount.sum(), last_ts=t.ts.max())
    con.to_parquet(expr, str(out))


def feature_expr(con, events: Path, users: Path, cutoffs: list[dt.date]):
    ev = contract_events(con.read_parquet(str(events)))
    us = con.read_parquet(str(users))
    us = us.mutate(signup_ts=us.signup_ts.cast("timestamp('UTC')"))
    levels = discover_levels(us)
    return feature_frame(
        ev,
        cutoff_table(cutoffs),
        us,
        selection=FeatureSelection(),
        activity=ActivityEvents(),
        attribute_levels=levels,
    )


def case_features(events: Path, users: Path, cutoffs: list[dt.date], out: Path, memory_limit: str, threads: int):
    con = duckdb_connection(memory_limit=memory_limit, threads=threads)
    ff = feature_expr(con, events, users, cutoffs)
    con.to_parquet(ff.table, str(out))


def case_pandas(events: Path, users: Path, cutoffs: list[dt.date], out: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    # the same attribute levels as the churnkit case (fixed in a manifest in real use)
    con = duckdb_connection()
    us = con.read_parquet(str(users))
    levels = discover_levels(us)
    con.disconnect()

    frames = pandas_features(events, users, cutoffs, levels)
    pq.write_table(pa.Table.from_pandas(frames, preserve_index=False), out)


def run_case(args: argparse.Namespace) -> None:
    d = data_dir(args.size)
    events, users = d / "events.parquet", d / "users.parquet"
    end = dt.date.fromisoformat(json.loads((d / "simulation.json").read_text())["period"]["end_exclusive"])
    cutoffs = cutoffs_for(end, args.cutoffs)
    out = OUT / "results" / f"{args.case}_{args.size}_{args.cutoffs}.parquet"
    out.parent.mkdir(parents=True, exist_ok=True)
    # imports outside the timed part (churnkit's are at the top): every case pays the same interpreter start
    import duckdb  # noqa: F401
    import pandas  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    rss0 = peak_rss_mib()
    t0 = time.perf_counter()
    if args.case == "floor":
        case_floor(events, out, args.memory_limit, args.threads)
    elif args.case == "features":
        case_features(events, users, cutoffs, out, args.memory_limit, args.threads)
    else:
        case_pandas(events, users, cutoffs, out)
    wall = time.perf_counter() - t0
    import pyarrow.parquet as pq

    md = pq.read_metadata(out)
    print("RESULT " + json.dumps(
        {"case": args.case, "size": args.size, "cutoffs": args.cutoffs, "wall_s": wall,
         "peak_rss_mib": peak_rss_mib(), "rss_after_imports_mib": rss0,
         "rows": md.num_rows, "columns": md.num_columns}
    ), flush=True)


# --------------------------------------------------------------------------- pandas baseline


def pandas_features(events: Path, users: Path, cutoffs: list[dt.date], levels: dict[str, list[str]]):
    """The feature families written plainly with pandas: filter ``ts < cutoff``, groupby."""
    import numpy as np
    import pandas as pd

    ev = pd.read_parquet(events, columns=["user_id", "ts", "event", "amount", "category", "channel", "campaign_id"])
    codes, names = pd.factorize(ev["user_id"])
    ev["user_id"] = codes.astype(np.int32)  # group on integer codes, names back at the end
    ev["event"] = ev["event"].astype("category")
    sec = ev["ts"].dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    ev = ev.drop(columns="ts")
    ev["sec"] = sec
    ev["day"] = sec // 86400
    ev["act"] = ev["event"].notna() & (ev["event"] != "push_sent")
    ev["purchase"] = ev["event"] == "purchase"
    ev["rev"] = ev["amount"].where(ev["purchase"], 0.0).fillna(0.0)
    ev["camp_push"] = (ev["event"] == "push_sent") & ev["campaign_id"].notna()
    ev = ev.drop(columns=["amount", "campaign_id"])

    us = pd.read_parquet(users)
    us["signup_sec"] = us["signup_ts"].dt.tz_convert(None).to_numpy().astype("datetime64[s]").astype(np.int64)
    us = us.set_index("user_id")

    types = ["session", "view", "add_to_cart", "purchase", "push_sent", "push_open", "coupon_redeem",
             "support_ticket", "checkin"]
    out = []
    for cutoff in cutoffs:
        cday = (pd.Timestamp(cutoff) - pd.Timestamp("1970-01-01")).days
        csec = cday * 86400
        h = ev[ev["day"] < cday].copy()
        h["age"] = cday - h["day"]
        g = h.groupby("user_id", observed=True)
        f = pd.DataFrame(index=g.size().index)

        def since(s, csec=csec, index=f.index):
            return (csec - s.reindex(index)) / 86400.0

        # windowed sums by event type, activity, revenue, active days (7/28/30/90)
        win = {}
        for w in (7, 28, 30, 90):
            hw = h[h["age"] <= w]
            gw = hw.groupby("user_id", observed=True)
            counts = hw.groupby(["user_id", "event"], observed=True).size().unstack(fill_value=0)
            s = pd.DataFrame(index=f.index)
            for t in types:
                s[t] = counts[t].reindex(f.index).fillna(0.0) if t in counts else 0.0
            s["activity"] = gw["act"].sum().reindex(f.index).fillna(0.0)
            s["revenue"] = gw["rev"].sum().reindex(f.index).fillna(0.0)
            s["camp_push"] = gw["camp_push"].sum().reindex(f.index).fillna(0.0)
            s["active_days"] = hw[hw["act"]].groupby("user_id", observed=True)["day"].nunique().reindex(f.index)
            s["active_days"] = s["active_days"].fillna(0.0)
            win[w] = s
        for w in (7, 30, 90):
            for t in types:
                f[f"n_{t}_{w}d"] = win[w][t]
            f[f"activity_{w}d"] = win[w]["activity"]
            f[f"active_days_{w}d"] = win[w]["active_days"]
            f[f"revenue_{w}d"] = win[w]["revenue"]

        # recency, frequency, monetary
        act = h[h["act"]]
        pur = h[h["purchase"]]
        last_act = act.groupby("user_id", observed=True)["sec"].max()
        f["days_since_last_activity"] = since(last_act)
        f["days_since_last_purchase"] = since(pur.groupby("user_id", observed=True)["sec"].max())
        f["days_since_first_event"] = since(g["sec"].min())
        first_act_day = act.groupby("user_id", observed=True)["day"].min().reindex(f.index)
        f["days_since_first_activity"] = (cday - first_act_day).astype("float64")
        f["active_days_total"] = act.groupby("user_id", observed=True)["day"].nunique().reindex(f.index).fillna(0.0)
        pdays = pur.groupby("user_id", observed=True)["day"]
        f["purchase_days_total"] = pdays.nunique().reindex(f.index).fillna(0.0)
        f["purchases_total"] = g["purchase"].sum().astype("float64")
        f["revenue_total"] = g["rev"].sum()
        f["avg_order_value"] = (f["revenue_total"] / f["purchases_total"]).where(f["purchases_total"] > 0)
        repeat = (f["purchase_days_total"] - 1.0).clip(lower=0.0)
        f["clv_frequency"] = repeat
        first_pday = pdays.min().reindex(f.index)
        f["clv_recency_days"] = (pdays.max().reindex(f.index) - first_pday).astype("float64")
        f["clv_age_days"] = (cday - first_pday).astype("float64") - 1.0
        first_day_rev = pur[pur["day"] == pur["user_id"].map(pdays.min()).astype("int64")]
        first_day_rev = first_day_rev.groupby("user_id", observed=True)["rev"].sum().reindex(f.index)
        f["clv_monetary"] = ((f["revenue_total"] - first_day_rev) / repeat).where(repeat > 0)

        # trends: daily rate in the recent window minus the rate in the window before it
        for recent, total in ((7, 28), (30, 90)):
            for col, name in (("activity", "activity"), ("session", "session"), ("purchase", "purchase"),
                              ("revenue", "revenue")):
                r, a = win[recent][col], win[total][col]
                f[f"{name}_rate_change_{recent}v{total - recent}"] = r / recent - (a - r) / (total - recent)

        # gaps between consecutive active days
        days = act[["user_id", "day"]].drop_duplicates().sort_values(["user_id", "day"])
        days["gap"] = days.groupby("user_id", observed=True)["day"].diff()
        gg = days.dropna(subset=["gap"]).groupby("user_id", observed=True)["gap"]
        mean = gg.mean().reindex(f.index)
        f["gap_mean_days"] = mean
        f["gap_std_days"] = gg.std(ddof=0).reindex(f.index)
        f["gap_max_days"] = gg.max().reindex(f.index).astype("float64")
        f["silence_vs_typical_gap"] = (f["days_since_last_activity"] / mean).where(mean > 0)

        # funnel over 90 days
        w90 = win[90]

        def rate(num, den):
            return (num / den).where(den > 0)

        f["view_to_cart_rate_90d"] = rate(w90["add_to_cart"], w90["view"])
        f["cart_to_purchase_rate_90d"] = rate(w90["purchase"], w90["add_to_cart"])
        f["session_to_purchase_rate_90d"] = rate(w90["purchase"], w90["session"])

        # push engagement
        f["push_open_rate_30d"] = rate(win[30]["push_open"], win[30]["push_sent"])
        f["push_open_rate_90d"] = rate(w90["push_open"], w90["push_sent"])
        f["push_opens_prev_60d"] = w90["push_open"] - win[30]["push_open"]
        opens = h[h["event"] == "push_open"]
        f["days_since_last_push_open"] = since(opens.groupby("user_id", observed=True)["sec"].max())

        # campaigns
        camp = h[h["camp_push"]]
        f["campaign_pushes_90d"] = w90["camp_push"]
        f["campaign_pushes_total"] = camp.groupby("user_id", observed=True).size().reindex(f.index).fillna(0.0)
        f["coupon_redeems_total"] = (h["event"] == "coupon_redeem").groupby(h["user_id"], observed=True).sum()
        f["days_since_last_campaign"] = since(camp.groupby("user_id", observed=True)["sec"].max())

        # distinct categories and channels over 90 days
        h90 = h[h["age"] <= 90]
        f["categories_90d"] = h90.groupby("user_id", observed=True)["category"].nunique().reindex(f.index)
        f["channels_90d"] = h90.groupby("user_id", observed=True)["channel"].nunique().reindex(f.index)
        f[["categories_90d", "channels_90d"]] = f[["categories_90d", "channels_90d"]].fillna(0.0)

        # user attributes
        u = us.reindex(names[f.index])
        f["tenure_days"] = ((csec - u["signup_sec"]) / 86400.0).to_numpy()
        for attr, lv in levels.items():
            col = u[attr]
            text = col.map(lambda v: str(v).lower()) if col.dtype == bool else col.astype("string")
            for level in lv:
                f[level_feature_name(attr, level)] = (text == level).fillna(False).astype("float64").to_numpy()

        f["signed_up"] = (u["signup_sec"].isna() | (u["signup_sec"] < csec)).to_numpy()
        f.insert(0, "cutoff", pd.Timestamp(cutoff, tz="UTC"))
        out.append(f.reset_index())
    res = pd.concat(out, ignore_index=True)
    res["user_id"] = np.asarray(names)[res["user_id"].to_numpy()]
    return res


# --------------------------------------------------------------------------- parent


def child(case: str, size: str, cutoffs: int, memory_limit: str, threads: int, timeout: float) -> dict:
    cmd = [sys.executable, __file__, "--case", case, "--size", size, "--cutoffs", str(cutoffs),
           "--memory-limit", memory_limit, "--threads", str(threads)]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        return {"case": case, "size": size, "cutoffs": cutoffs, "error": f"timed out after {timeout:.0f} s"}
    for line in p.stdout.splitlines():
        if line.startswith("RESULT "):
            r = json.loads(line[7:])
            r["process_s"] = time.perf_counter() - t0
            return r
    tail = (p.stderr or p.stdout).strip().splitlines()[-3:]
    return {"case": case, "size": size, "cutoffs": cutoffs, "error": f"rc={p.returncode}: " + " | ".join(tail)}


def check(size: str) -> None:
    """Column-by-column agreement of the pandas baseline with churnkit (1 cutoff)."""
    import numpy as np
    import pandas as pd

    a = pd.read_parquet(OUT / "results" / f"features_{size}_1.parquet").sort_values("user_id")
    b = pd.read_parquet(OUT / "results" / f"pandas_{size}_1.parquet").sort_values("user_id")
    print(f"check {size}: rows churnkit {len(a):,}, pandas {len(b):,}; same users: "
          f"{list(a.user_id) == list(b.user_id)}")
    a, b = a.set_index("user_id"), b.set_index("user_id").reindex(a.user_id)
    missing = [c for c in a.columns if c not in b.columns]
    bad = []
    for c in a.columns:
        if c in missing or c == "cutoff":
            continue
        x, y = a[c].astype("float64").to_numpy(), b[c].astype("float64").to_numpy()
        if not np.allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True):
            bad.append((c, int((~np.isclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True)).sum())))
    print(f"  columns compared {len(a.columns) - len(missing) - 1}; missing in pandas {missing}; "
          f"differing {bad or 'none'}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1m", "10m"], choices=list(SIZES))
    ap.add_argument("--memory-limit", default="3GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-pandas-12-at", nargs="*", default=["10m"], metavar="SIZE",
                    help="sizes where the pandas baseline runs for 1 cutoff only (default: 10m)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--check", action="store_true", help="compare pandas and churnkit outputs (1 cutoff)")
    ap.add_argument("--case", choices=["floor", "features", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--size", choices=list(SIZES), help=argparse.SUPPRESS)
    ap.add_argument("--cutoffs", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        run_case(args)
        return

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import duckdb
    import ibis
    import pandas as pd

    print(f"date: {dt.date.today()}  machine: {os.cpu_count()} cores, {mem:.0f} GiB, {cpu_model()}")
    print(f"python {platform.python_version()}, duckdb {duckdb.__version__}, ibis {ibis.__version__}, "
          f"pandas {pd.__version__}; DuckDB memory_limit={args.memory_limit} threads={args.threads}")
    print("command: .venv/bin/python bench/bench_features.py " + " ".join(sys.argv[1:]), flush=True)
    results = []
    for size in args.sizes:
        info = prepare(size)
        import duckdb as _d

        n_users = _d.sql(
            f"select count(distinct user_id) from read_parquet('{data_dir(size) / 'events.parquet'}')"
        ).fetchall()[0][0]
        plan = [("floor", 1), ("features", 1), ("features", 12), ("pandas", 1)]
        if size not in args.skip_pandas_12_at:
            plan.append(("pandas", 12))
        for case, n in plan:
            r = child(case, size, n, args.memory_limit, args.threads, args.timeout)
            r |= {"events": info["events"], "users_with_events": n_users}
            results.append(r)
            if "error" in r:
                print(f"[{size}] {case} x{n}: {r['error']}", flush=True)
            else:
                print(f"[{size}] {case} x{n}: {r['wall_s']:.1f} s, peak RSS {r['peak_rss_mib']:,.0f} MiB, "
                      f"{r['rows']:,} rows x {r['columns']} cols", flush=True)
        if args.check:
            check(size)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    report(results)


def report(results: list[dict]) -> None:
    by = {(r["size"], r["case"], r["cutoffs"]): r for r in results if "error" not in r}
    print()
    print("| events | users | case | cutoffs | rows out | wall | peak RSS | / floor | / pandas |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['events']:,} | {r['users_with_events']:,} | {r['case']} | {r['cutoffs']} | - | "
                  f"{r['error']} | | | |")
            continue
        floor = by.get((r["size"], "floor", 1))
        pdr = by.get((r["size"], "pandas", r["cutoffs"]))
        fr = f"{r['wall_s'] / floor['wall_s']:.1f}x" if floor else "-"
        pr = f"{r['wall_s'] / pdr['wall_s']:.2f}x" if pdr and r["case"] != "pandas" else "-"
        print(f"| {r['events']:,} | {r['users_with_events']:,} | {r['case']} | {r['cutoffs']} | {r['rows']:,} | "
              f"{r['wall_s']:.1f} s | {r['peak_rss_mib']:,.0f} MiB | {fr} | {pr} |")
    for size in dict.fromkeys(r["size"] for r in results):
        one, twelve = by.get((size, "features", 1)), by.get((size, "features", 12))
        floor = by.get((size, "floor", 1))
        if one and twelve and floor:
            print(f"{size}: 12 cutoffs / 1 cutoff = {twelve['wall_s'] / one['wall_s']:.2f}x (target <= 3x); "
                  f"1 cutoff / floor = {one['wall_s'] / floor['wall_s']:.1f}x (target <= 3x); "
                  f"peak RSS 12 cutoffs {twelve['peak_rss_mib'] / 1024:.2f} GiB")


if __name__ == "__main__":
    main()
