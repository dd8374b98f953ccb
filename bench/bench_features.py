"""Benchmark the feature build (all families, attribute levels) at 1 and 12 cutoffs.

Data (generated once, in bench/out/features/, gitignored): ``churnkit.simulate`` logs over
365 days, 7,000 users (~1M events) and 70,000 users (~10M events). Each case runs in a
fresh child process (this script re-invoked with ``--case``), so peak RSS is the child's own
(``ru_maxrss``: Python, DuckDB, Polars and Arrow together), peaks of different cases never
mix, and ``cpu`` is the child's user + system seconds (steadier than wall on a busy machine):

- ``features``: ``feature_frame`` over ``con.read_parquet(events)`` on
  ``duckdb_connection(memory_limit, threads)``, written to Parquet with ``con.to_parquet``;
- ``floor``: one DuckDB pass ``GROUP BY user_id`` with count / sum / max over the same
  Parquet, written the same way, under the same limits (the least any feature build pays);
- ``polars``: the same features with Polars' lazy API (:func:`polars_features`), with
  ``POLARS_MAX_THREADS`` = the DuckDB threads, the streaming engine by default, written with
  ``sink_parquet``;
- ``pandas``: the same families written plainly with pandas groupby: read the Parquet, then
  for each cutoff keep ``ts < cutoff`` and aggregate; written to Parquet with pyarrow.

Cutoffs: 1 cutoff = the day after the last event (all history); 12 cutoffs = that day and
the 11 before it, 30 days apart. ``--check`` compares the polars and pandas outputs with
churnkit's column by column (untimed), to show they compute the same quantities.
``--repeat N`` runs every case N times and reports the median. The table's ratios are
wall-time ratios within this run (floor and polars measured beside the features).

    .venv/bin/python bench/bench_features.py                       # 1M and 10M, all cases
    .venv/bin/python bench/bench_features.py --sizes 1m --check --repeat 3

Values before and after a change to the feature code: ``bench/feature_snapshot.py``.
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


def cpu_s() -> float:
    """This process's CPU seconds (user + system, all threads): less sensitive than wall
    time to other work on a shared machine."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


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

    if args.case == "polars":
        import polars as pl

        assert pl.thread_pool_size() == args.threads, "POLARS_MAX_THREADS is set before polars is imported"

    rss0 = peak_rss_mib()
    cpu0 = cpu_s()
    t0 = time.perf_counter()
    if args.case == "floor":
        case_floor(events, out, args.memory_limit, args.threads)
    elif args.case == "features":
        case_features(events, users, cutoffs, out, args.memory_limit, args.threads)
    elif args.case == "polars":
        case_polars(events, users, cutoffs, out, args.polars_engine)
    else:
        case_pandas(events, users, cutoffs, out)
    wall = time.perf_counter() - t0
    cpu = cpu_s() - cpu0
    import pyarrow.parquet as pq

    md = pq.read_metadata(out)
    print("RESULT " + json.dumps(
        {"case": args.case, "size": args.size, "cutoffs": args.cutoffs, "wall_s": wall, "cpu_s": cpu,
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


# --------------------------------------------------------------------------- polars baseline


def polars_features(events: Path, users: Path, cutoffs: list[dt.date], levels: dict[str, list[str]],
                    engine: str = "auto"):
    """The same features written idiomatically with Polars' lazy API (a LazyFrame).

    One lazy scan reduces events to a (user, day number) table (the approach any columnar
    engine takes: per-day counts are what every window sums); each cutoff is then a filter
    of that table and one ``group_by`` with filtered aggregates, the cutoffs concatenated
    so Polars plans (and parallelises) them together; distinct categories and channels read
    a distinct (user, day, value) table the same way. Values are computed independently of
    churnkit's code; only names (event types, the activity rule, level names) come from it.
    """
    import polars as pl

    from churnkit.contracts import EVENT_TYPES, PURCHASE, REFUND

    act_rule = ActivityEvents()
    ev = pl.scan_parquet(events)
    have = set(ev.collect_schema().names())
    ev = ev.with_columns(**{c: pl.lit(None, pl.String) for c in ("order_id", "category", "channel", "campaign_id")
                            if c not in have})
    sec = pl.col("ts").dt.epoch("s")
    event = pl.col("event")
    act = event.is_not_null() & ~event.is_in(act_rule.exclude)
    if act_rule.include is not None:
        act = act & event.is_in(act_rule.include)
    ev = ev.select("user_id", "event", "amount", "order_id", "category", "channel", "campaign_id",
                   sec=sec, day=(sec // 86400).cast(pl.Int32), act=act)

    purchase = event == PURCHASE
    camp_push = (event == "push_sent") & pl.col("campaign_id").is_not_null()

    def amount(cond):
        return pl.col("amount").filter(cond).sum()  # 0.0 when none, nulls skipped

    daily = (
        ev.group_by("user_id", "day")
        .agg(
            *[(event == t).sum().alias(f"n_{t}") for t in EVENT_TYPES if t != PURCHASE],
            ((purchase & pl.col("order_id").is_null()).sum()
             + pl.col("order_id").filter(purchase & pl.col("order_id").is_not_null()).n_unique()).alias("n_purchase"),
            pl.col("act").sum().alias("n_activity"),
            camp_push.sum().alias("n_campaign_push"),
            (amount(purchase) - amount(event == REFUND)).alias("revenue"),
            pl.col("sec").filter(pl.col("act")).max().alias("last_activity_s"),
            pl.col("sec").filter(purchase).max().alias("last_purchase_s"),
            pl.col("sec").filter(event == "push_open").max().alias("last_push_open_s"),
            pl.col("sec").filter(camp_push).max().alias("last_campaign_s"),
            pl.col("sec").min().alias("first_s"),
        )
        .sort("user_id", "day")
    )
    active = pl.col("n_activity") > 0
    bought = pl.col("n_purchase") > 0
    # days since the previous active day (on active days), and the user's first purchase day
    prev_active = pl.when(active).then(pl.col("day")).forward_fill().shift(1).over("user_id")
    daily = daily.with_columns(
        gap=pl.when(active).then((pl.col("day") - prev_active).cast(pl.Float64)),
        is_first_pday=(pl.col("day") == pl.col("day").filter(bought).min().over("user_id")) & bought,
    ).collect(engine=engine).lazy()
    distinct = {col: ev.filter(pl.col(col).is_not_null()).select("user_id", "day", col).unique()
                .collect(engine=engine).lazy() for col in ("category", "channel")}

    windows = (7, 28, 30, 90)
    sums = [f"n_{t}" for t in EVENT_TYPES] + ["n_activity", "n_campaign_push", "revenue"]
    per_cutoff = []
    for cutoff in cutoffs:
        cday = (cutoff - dt.date(1970, 1, 1)).days
        h = daily.filter(pl.col("day") < cday)
        age = cday - pl.col("day")
        aggs = [pl.col(c).filter(age <= w).sum().alias(f"{c}_{w}") for w in windows for c in sums]
        aggs += [(active & (age <= w)).sum().alias(f"active_days_{w}") for w in (7, 30, 90)]
        aggs += [
            pl.col("last_activity_s").max(), pl.col("last_purchase_s").max(), pl.col("last_push_open_s").max(),
            pl.col("last_campaign_s").max(), pl.col("first_s").min(),
            active.sum().alias("active_days_all"), bought.sum().alias("purchase_days_all"),
            pl.col("n_purchase").sum().alias("purchases_all"), pl.col("revenue").sum().alias("revenue_all"),
            pl.col("n_campaign_push").sum().alias("campaign_all"), pl.col("n_coupon_redeem").sum().alias("coupon_all"),
            pl.col("day").filter(active).min().alias("first_active_day"),
            pl.col("day").filter(active).max().alias("last_active_day"),
            pl.col("day").filter(bought).min().alias("first_pday"),
            pl.col("day").filter(bought).max().alias("last_pday"),
            pl.col("revenue").filter(pl.col("is_first_pday")).sum().alias("first_day_revenue"),
            pl.col("gap").count().alias("gap_n"), pl.col("gap").sum().alias("gap_sum"),
            (pl.col("gap") * pl.col("gap")).sum().alias("gap_sq"), pl.col("gap").max().alias("gap_max"),
            (pl.col("day") - pl.col("gap")).max().alias("prev_active_day"),
        ]
        f = h.group_by("user_id").agg(aggs)
        for col, name in (("category", "categories_90d"), ("channel", "channels_90d")):
            v = distinct[col].filter((pl.col("day") < cday) & (pl.col("day") >= cday - 90))
            f = f.join(v.group_by("user_id").agg(pl.col(col).n_unique().alias(name)), on="user_id", how="left")
        per_cutoff.append(f.with_columns(cday=pl.lit(cday, pl.Int32)))
    f = pl.concat(per_cutoff)

    csec = pl.col("cday").cast(pl.Int64) * 86400
    x = pl.col

    def since(col):
        return (csec - x(col)).cast(pl.Float64) / 86400.0

    def ratio(num, den):
        return pl.when(den > 0).then(num.cast(pl.Float64) / den.cast(pl.Float64))

    def flt(e):
        return e.cast(pl.Float64)

    feats: dict[str, pl.Expr] = {}
    for w in (7, 30, 90):
        feats |= {f"n_{t}_{w}d": flt(x(f"n_{t}_{w}")) for t in EVENT_TYPES}
        feats |= {f"activity_{w}d": flt(x(f"n_activity_{w}")), f"active_days_{w}d": flt(x(f"active_days_{w}")),
                  f"revenue_{w}d": flt(x(f"revenue_{w}"))}
    repeat = pl.max_horizontal(flt(x("purchase_days_all")) - 1.0, pl.lit(0.0))
    feats |= {
        "days_since_last_activity": since("last_activity_s"),
        "days_since_last_purchase": since("last_purchase_s"),
        "days_since_first_event": since("first_s"),
        "days_since_first_activity": flt(x("cday") - x("first_active_day")),
        "active_days_total": flt(x("active_days_all")),
        "purchase_days_total": flt(x("purchase_days_all")),
        "purchases_total": flt(x("purchases_all")),
        "revenue_total": flt(x("revenue_all")),
        "avg_order_value": ratio(x("revenue_all"), x("purchases_all")),
        "clv_frequency": repeat,
        "clv_recency_days": flt(x("last_pday") - x("first_pday")),
        "clv_age_days": flt(x("cday") - x("first_pday")) - 1.0,
        "clv_monetary": ratio(x("revenue_all") - x("first_day_revenue"), repeat),
    }
    for recent, total in ((7, 28), (30, 90)):
        for col, name in (("n_activity", "activity"), ("n_session", "session"), ("n_purchase", "purchase"),
                          ("revenue", "revenue")):
            r, a = flt(x(f"{col}_{recent}")), flt(x(f"{col}_{total}"))
            feats[f"{name}_rate_change_{recent}v{total - recent}"] = r / recent - (a - r) / (total - recent)
    mean = ratio(x("gap_sum"), x("gap_n"))
    feats |= {
        "gap_mean_days": mean,
        "gap_std_days": pl.when(x("gap_n") > 0).then(
            pl.max_horizontal(ratio(x("gap_sq"), x("gap_n")) - mean * mean, pl.lit(0.0)).sqrt()),
        "gap_max_days": x("gap_max"),
        "last_gap_days": flt(x("last_active_day")) - x("prev_active_day"),
        "silence_vs_typical_gap": ratio(since("last_activity_s"), mean),
        "view_to_cart_rate_90d": ratio(x("n_add_to_cart_90"), x("n_view_90")),
        "cart_to_purchase_rate_90d": ratio(x("n_purchase_90"), x("n_add_to_cart_90")),
        "session_to_purchase_rate_90d": ratio(x("n_purchase_90"), x("n_session_90")),
        "push_open_rate_30d": ratio(x("n_push_open_30"), x("n_push_sent_30")),
        "push_open_rate_90d": ratio(x("n_push_open_90"), x("n_push_sent_90")),
        "push_opens_prev_60d": flt(x("n_push_open_90") - x("n_push_open_30")),
        "days_since_last_push_open": since("last_push_open_s"),
        "campaign_pushes_90d": flt(x("n_campaign_push_90")),
        "campaign_pushes_total": flt(x("campaign_all")),
        "coupon_redeems_total": flt(x("coupon_all")),
        "days_since_last_campaign": since("last_campaign_s"),
        "categories_90d": flt(x("categories_90d")).fill_null(0.0),
        "channels_90d": flt(x("channels_90d")).fill_null(0.0),
    }

    us = pl.scan_parquet(users)
    attrs = {a: pl.col(a).cast(pl.String) for a in levels}
    us = us.select("user_id", signup_s=pl.col("signup_ts").dt.epoch("s"), **attrs)
    f = f.join(us, on="user_id", how="left")
    feats["tenure_days"] = since("signup_s")
    for attr, lv in levels.items():
        feats |= {level_feature_name(attr, level): (x(attr) == level).fill_null(False).cast(pl.Float64) for level in lv}
    cutoff = pl.from_epoch(csec, time_unit="s").dt.replace_time_zone("UTC").dt.cast_time_unit("us")
    return f.select("user_id", cutoff.alias("cutoff"), **feats,
                    signed_up=x("signup_s").is_null() | (x("signup_s") < csec))


def case_polars(events: Path, users: Path, cutoffs: list[dt.date], out: Path, engine: str) -> None:
    # the same attribute levels as the churnkit case (fixed in a manifest in real use)
    con = duckdb_connection()
    levels = discover_levels(con.read_parquet(str(users)))
    con.disconnect()
    polars_features(events, users, cutoffs, levels, engine).sink_parquet(out, engine=engine)


# --------------------------------------------------------------------------- parent


def child(case: str, size: str, cutoffs: int, memory_limit: str, threads: int, timeout: float,
          polars_engine: str) -> dict:
    cmd = [sys.executable, __file__, "--case", case, "--size", size, "--cutoffs", str(cutoffs),
           "--memory-limit", memory_limit, "--threads", str(threads), "--polars-engine", polars_engine]
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


def check(size: str, other: str, cutoffs: int) -> bool:
    """Column-by-column agreement of a baseline (pandas, polars) with churnkit (untimed):
    same (user, cutoff) rows, values within 1e-9, and (polars) every churnkit column."""
    import numpy as np
    import pandas as pd

    res = OUT / "results"
    pa, pb = res / f"features_{size}_{cutoffs}.parquet", res / f"{other}_{size}_{cutoffs}.parquet"
    if not (pa.exists() and pb.exists()):
        return True
    keys = ["cutoff", "user_id"]
    a = pd.read_parquet(pa).sort_values(keys)
    b = pd.read_parquet(pb)
    b["cutoff"] = b["cutoff"].astype(a["cutoff"].dtype)
    b = b.sort_values(keys)
    same_rows = a[keys].reset_index(drop=True).equals(b[keys].reset_index(drop=True))
    print(f"check {size} x{cutoffs}: rows churnkit {len(a):,}, {other} {len(b):,}; same (user, cutoff) rows: {same_rows}")
    a, b = a.set_index(keys), b.set_index(keys).reindex(a.set_index(keys).index)
    missing = [c for c in a.columns if c not in b.columns]
    bad = []
    for c in a.columns:
        if c in missing:
            continue
        x, y = a[c].astype("float64").to_numpy(), b[c].astype("float64").to_numpy()
        if not np.allclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True):
            bad.append((c, int((~np.isclose(x, y, rtol=1e-9, atol=1e-9, equal_nan=True)).sum())))
    print(f"  columns compared {len(a.columns) - len(missing)}; missing in {other} {missing}; "
          f"differing {bad or 'none'}")
    # the pandas baseline predates some columns (refund counts, last gap): missing there is
    # reported, not a failure; the polars one covers every column
    return same_rows and not bad and (other == "pandas" or not missing)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", nargs="+", default=["1m", "10m"], choices=list(SIZES))
    ap.add_argument("--memory-limit", default="3GB")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--skip-pandas-12-at", nargs="*", default=["10m"], metavar="SIZE",
                    help="sizes where the pandas baseline runs for 1 cutoff only (default: 10m)")
    ap.add_argument("--timeout", type=float, default=3600)
    ap.add_argument("--check", action="store_true",
                    help="compare the polars and pandas outputs with churnkit's, column by column (untimed)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per case; the table shows the median (default 1)")
    ap.add_argument("--polars-engine", default="streaming", choices=["streaming", "in-memory"],
                    help="Polars engine for the polars case (default: streaming)")
    ap.add_argument("--case", choices=["floor", "features", "polars", "pandas"], help=argparse.SUPPRESS)
    ap.add_argument("--size", choices=list(SIZES), help=argparse.SUPPRESS)
    ap.add_argument("--cutoffs", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        os.environ["POLARS_MAX_THREADS"] = str(args.threads)  # read when polars is imported
        run_case(args)
        return

    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    import duckdb
    import ibis
    import pandas as pd

    print(f"date: {dt.date.today()}  machine: {os.cpu_count()} cores, {mem:.0f} GiB, {cpu_model()}")
    import polars as pl

    print(f"python {platform.python_version()}, duckdb {duckdb.__version__}, ibis {ibis.__version__}, "
          f"pandas {pd.__version__}, polars {pl.__version__}; DuckDB memory_limit={args.memory_limit} "
          f"threads={args.threads} (Polars POLARS_MAX_THREADS the same, engine {args.polars_engine})")
    print("command: .venv/bin/python bench/bench_features.py " + " ".join(sys.argv[1:]), flush=True)
    load = os.getloadavg()[0]
    print(f"load average at start {load:.1f} on {os.cpu_count()} cores"
          + (" (busy machine: wall times are inflated; compare cpu and the ratios)" if load > 0.5 else ""), flush=True)
    results = []
    checks_ok = True
    for size in args.sizes:
        info = prepare(size)
        import duckdb as _d

        n_users = _d.sql(
            f"select count(distinct user_id) from read_parquet('{data_dir(size) / 'events.parquet'}')"
        ).fetchall()[0][0]
        plan = [("floor", 1), ("features", 1), ("features", 12), ("polars", 1), ("polars", 12), ("pandas", 1)]
        if size not in args.skip_pandas_12_at:
            plan.append(("pandas", 12))
        for case, n in plan:
            runs = [child(case, size, n, args.memory_limit, args.threads, args.timeout, args.polars_engine)
                    for _ in range(args.repeat)]
            r = median_run(runs) | {"events": info["events"], "users_with_events": n_users}
            results.append(r)
            if "error" in r:
                print(f"[{size}] {case} x{n}: {r['error']}", flush=True)
            else:
                walls = ", ".join(f"{x['wall_s']:.2f}" for x in runs if "error" not in x)
                print(f"[{size}] {case} x{n}: {r['wall_s']:.2f} s (runs: {walls}), cpu {r['cpu_s']:.1f} s, "
                      f"peak RSS {r['peak_rss_mib']:,.0f} MiB, {r['rows']:,} rows x {r['columns']} cols, "
                      f"load {os.getloadavg()[0]:.1f}", flush=True)
        if args.check:
            for other, n in (("polars", 1), ("polars", 12), ("pandas", 1), ("pandas", 12)):
                checks_ok &= check(size, other, n)
    (OUT / "results.json").write_text(json.dumps(results, indent=2))
    report(results)
    if args.check:
        print("checks: " + ("all agree" if checks_ok else "SOME DIFFER"))


def median_run(runs: list[dict]) -> dict:
    """The run with the median wall time (the first error if any run failed); peak RSS is
    the largest of the runs."""
    bad = [r for r in runs if "error" in r]
    if bad:
        return bad[0]
    ordered = sorted(runs, key=lambda r: r["wall_s"])
    r = dict(ordered[(len(ordered) - 1) // 2])
    return r | {"peak_rss_mib": max(x["peak_rss_mib"] for x in runs), "runs": len(runs)}


def report(results: list[dict]) -> None:
    """The table: wall (median of the runs), CPU seconds, peak RSS, and wall over the floor's
    and over Polars' at the same number of cutoffs, all measured in this run."""
    by = {(r["size"], r["case"], r["cutoffs"]): r for r in results if "error" not in r}
    print()
    print("| events | users | case | cutoffs | rows out | wall | cpu | peak RSS | / floor | / polars |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        if "error" in r:
            print(f"| {r['events']:,} | {r['users_with_events']:,} | {r['case']} | {r['cutoffs']} | - | "
                  f"{r['error']} | | | | |")
            continue
        floor = by.get((r["size"], "floor", 1))
        plr = by.get((r["size"], "polars", r["cutoffs"]))
        fr = f"{r['wall_s'] / floor['wall_s']:.1f}x" if floor else "-"
        pr = f"{r['wall_s'] / plr['wall_s']:.2f}x" if plr and r["case"] not in ("polars", "floor") else "-"
        print(f"| {r['events']:,} | {r['users_with_events']:,} | {r['case']} | {r['cutoffs']} | {r['rows']:,} | "
              f"{r['wall_s']:.2f} s | {r['cpu_s']:.1f} s | {r['peak_rss_mib']:,.0f} MiB | {fr} | {pr} |")
    print()
    for size in dict.fromkeys(r["size"] for r in results):
        one, twelve = by.get((size, "features", 1)), by.get((size, "features", 12))
        floor = by.get((size, "floor", 1))
        p1, p12 = by.get((size, "polars", 1)), by.get((size, "polars", 12))
        if one and twelve and floor:
            print(f"{size}: features / floor: 1 cutoff {one['wall_s'] / floor['wall_s']:.1f}x (target <= 3x), "
                  f"12 cutoffs {twelve['wall_s'] / floor['wall_s']:.1f}x (target <= 5x); "
                  f"12 / 1 cutoff {twelve['wall_s'] / one['wall_s']:.2f}x; "
                  f"peak RSS 12 cutoffs {twelve['peak_rss_mib'] / 1024:.2f} GiB (target < 3 GiB)")
        if one and twelve and p1 and p12:
            print(f"{size}: features / polars: 1 cutoff {one['wall_s'] / p1['wall_s']:.2f}x, "
                  f"12 cutoffs {twelve['wall_s'] / p12['wall_s']:.2f}x (target < 1x)")


if __name__ == "__main__":
    main()
