"""Model monitoring on the simulator: drift flags against known shifts, realised and expected AUC.

One simulation; the GA4 models (``churn_ga4``, ``purchase_ga4``, ``revenue_ga4``, one Optuna
trial each) are trained and promoted on the log up to T0 = end - 70 days (ingest with
``as_of`` = T0). The trained workspace is then copied once per scenario and each copy
ingests a whole log (up to the end): the original (the control) or a modified copy of the
simulator's Parquet files (the shift). Each copy is scored weekly at T0, T0 + 7, ...,
end - 28 (every outcome window closes inside the log: "realised") and at end - 3 (outcomes
not in yet: "awaiting outcomes"), then ``churnkit monitor`` judges every run.

Shifts (dates relative to the simulation's end E; features at an as-of see days before it):

- ``cents``: a broken upstream field: every amount x100 from E - 56 on.
- ``outage``: an app outage: every ``channel == "app"`` event dropped on E - 47 .. E - 43
  (sessions, views, purchases made in the app vanish; push and web go on). It falls in the
  features' last week at E - 42 and in the outcome windows of E - 49 (7 days) and of
  E - 63 .. E - 49 (28 days): outcomes themselves change there.
- ``acquisition``: the acquisition mix: from T0 on, new signups come only from
  ``paid_social`` (every other signup after T0 removed, users and events; every
  paid_social signup after T0 tripled: two clones with the same log under new ids).

Ground truth of "truly shifted", decided without churnkit's drift code: at each as-of and
for each model, the model's features are computed on the original and on the shifted log
(``scoring_features``, the scoring code), over the users inside the model's population in
each run's scores file. A feature is truly shifted when (a) at least 5% of the union of
the two populations changed (a different value, missing counting as a value, or in one
population only) AND (b) a two-sample Kolmogorov-Smirnov test (scipy) of the original
against the shifted values (missing read as a value below all others) has p < 0.001.
The original copy is its own control: nothing in it is truly shifted, so every flag there
is a false positive by this definition (a move since training, not a shift we injected).

Realised AUC is recomputed independently: labels in pandas from the very events Parquet
that copy ingested (churn: no event other than push_sent/refund in [as_of, as_of + 7d);
purchase: a purchase event in [as_of, as_of + 7d); revenue: purchase minus refund amounts
in [as_of, as_of + 28d), floored at 0), the scores file's population and scores, and
sklearn's ``roc_auc_score`` (a plain normalised Gini for revenue). The truth table's
``p_churn`` / ``p_purchase`` gives the oracle AUC on the same labels as context.

    .venv/bin/python bench/bench_monitor.py --users 3000 --days 240 --seed 11 --shift all
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats
from sklearn.metrics import roc_auc_score

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

from churnkit.config import ChurnkitConfig, SimulateSettings
from churnkit.contracts import ROLE_OUTPUTS, as_of_cutoff, in_population_column
from churnkit.datasets.build import scoring_features
from churnkit.datasets.manifest import Manifest
from churnkit.flows.ingest import ingest
from churnkit.flows.monitor import SCORE_FEATURE, monitor
from churnkit.flows.project import Project
from churnkit.flows.promote import promote_problem
from churnkit.flows.score import score
from churnkit.flows.simulate import simulate_to
from churnkit.flows.train import train
from churnkit.io import tracking
from churnkit.scoring.roles import feature_key
from churnkit.training.fit import TrainOptions

PROBLEMS = ("churn_ga4", "purchase_ga4", "revenue_ga4")
SHIFTS = ("cents", "outage", "acquisition")
CONFIG = {"scoring": {"reasons": 0}}  # scores alone: SHAP reasons are not under test here
NOT_ACTIVITY = ("push_sent", "refund")
CHANGED_SHARE = 0.05
KS_P = 0.001


# ---------------------------------------------------------------- shifted copies of the log

def write_copy(sim: Path, out: Path, shift: str | None, end: dt.date, t0: dt.date) -> Path:
    """The simulator's events/users/assignments, modified by ``shift`` (None: unchanged)."""
    out.mkdir(parents=True)
    ev = pd.read_parquet(sim / "events.parquet")
    users = pd.read_parquet(sim / "users.parquet")
    asg = pd.read_parquet(sim / "assignments.parquet")
    def day(d: dt.date) -> pd.Timestamp:
        return pd.Timestamp(as_of_cutoff(d))

    if shift == "cents":
        at = (ev["ts"] >= day(end - dt.timedelta(days=56))) & ev["amount"].notna()
        ev.loc[at, "amount"] = ev.loc[at, "amount"] * 100.0
    elif shift == "outage":
        lo, hi = day(end - dt.timedelta(days=47)), day(end - dt.timedelta(days=42))
        ev = ev[~((ev["ts"] >= lo) & (ev["ts"] < hi) & (ev["channel"] == "app"))]
    elif shift == "acquisition":
        late = users["signup_ts"] >= day(t0)
        gone = set(users.loc[late & (users["acquisition_channel"] != "paid_social"), "user_id"])
        surge = users.loc[late & (users["acquisition_channel"] == "paid_social"), "user_id"]
        users = users[~users["user_id"].isin(gone)]
        ev = ev[~ev["user_id"].isin(gone)]
        asg = asg[~asg["user_id"].isin(gone)]
        clones_u, clones_e = [], []
        for k in (1, 2):
            u = users[users["user_id"].isin(surge)].copy()
            e = ev[ev["user_id"].isin(surge)].copy()
            u["user_id"] = u["user_id"] + f"_c{k}"
            e["user_id"] = e["user_id"] + f"_c{k}"
            clones_u.append(u)
            clones_e.append(e)
        users = pd.concat([users, *clones_u], ignore_index=True)
        ev = pd.concat([ev, *clones_e], ignore_index=True).sort_values("ts", kind="mergesort")
    elif shift is not None:
        raise ValueError(shift)
    ev.to_parquet(out / "events.parquet", index=False)
    users.to_parquet(out / "users.parquet", index=False)
    asg.to_parquet(out / "assignments.parquet", index=False)
    return out


# ---------------------------------------------------------------- independent figures

def labels_from_events(ev: pd.DataFrame, ids: pd.Series, kind: str, as_of: dt.date, horizon: int) -> np.ndarray:
    lo = pd.Timestamp(as_of_cutoff(as_of))
    w = ev[(ev["ts"] >= lo) & (ev["ts"] < lo + pd.Timedelta(days=horizon))]
    if kind == "churn":
        active = set(w.loc[~w["event"].isin(NOT_ACTIVITY), "user_id"])
        return (~ids.isin(active)).to_numpy("float64")
    if kind == "purchase":
        return ids.isin(set(w.loc[w["event"] == "purchase", "user_id"])).to_numpy("float64")
    money = w[w["event"].isin(["purchase", "refund"])]
    net = money["amount"].fillna(0.0).where(money["event"] == "purchase", -money["amount"].fillna(0.0))
    net = net.groupby(money["user_id"]).sum()
    return np.maximum(ids.map(net).fillna(0.0).to_numpy("float64"), 0.0)


def gini_norm(y: np.ndarray, s: np.ndarray) -> float:
    def g(order_by: np.ndarray) -> float:
        order = np.argsort(-order_by, kind="mergesort")
        share = np.cumsum(y[order]) / y.sum()
        return float(2 * share.mean() - 1)
    return g(s) / g(y) if y.sum() > 0 else float("nan")


def truly_shifted(orig: pd.DataFrame, shifted: pd.DataFrame, names: list[str]) -> dict[str, tuple[float, float]]:
    """Feature -> (changed share, KS p) between two populations' features (indexed by user)."""
    union = orig.index.union(shifted.index)
    out = {}
    for n in names:
        a = orig[n].reindex(union).to_numpy("float64")
        b = shifted[n].reindex(union).to_numpy("float64")
        both_in = union.isin(orig.index) & union.isin(shifted.index)
        same = both_in & ((a == b) | (np.isnan(a) & np.isnan(b)) | np.isclose(a, b, rtol=1e-9, atol=1e-12))
        changed = 1.0 - same.mean() if len(union) else 0.0
        x, z = orig[n].to_numpy("float64"), shifted[n].to_numpy("float64")
        finite = np.concatenate([x[~np.isnan(x)], z[~np.isnan(z)]])
        low = (finite.min() - 1.0) if finite.size else 0.0
        x, z = np.where(np.isnan(x), low, x), np.where(np.isnan(z), low, z)
        p = float(stats.ks_2samp(x, z, method="asymp").pvalue) if len(x) and len(z) and changed > 0 else 1.0
        out[n] = (changed, p)
    return out


# ---------------------------------------------------------------- one scenario

def run_scenario(name: str, base: Path, root: Path, log_dir: Path, dates: list[dt.date], end: dt.date,
                 truth: pd.DataFrame) -> tuple[Project, list[dict], dict]:
    ws = root / f"ws_{name}"
    shutil.copytree(base, ws)
    project = Project.at(ws, ChurnkitConfig.model_validate(CONFIG))
    ingest(project, [log_dir], "simulator", as_of=as_of_cutoff(end))
    for d in dates:
        score(project, d, log_run=False)
    t = time.perf_counter()
    outcome = monitor(project, log_run=True)
    seconds = time.perf_counter() - t
    again = monitor(project, log_run=False)  # a second call: realised runs are final and reused
    reused = sum(c.reused for c in again.checks)
    ev = pd.read_parquet(log_dir / "events.parquet", columns=["user_id", "ts", "event", "amount"])
    rows = []
    for check in outcome.checks:
        r = check.row
        as_of = dt.date.fromisoformat(r["as_of"])
        scores = pd.read_parquet(project.workspace.scores_dir / r["scores_file"])
        role, kind = r["role"], r["kind"]
        col = ROLE_OUTPUTS[role]["score"]
        inside = scores[in_population_column(role)].fillna(False).astype(bool) & scores[col].notna()
        pop = scores.loc[inside, ["user_id", col]].reset_index(drop=True)
        drift = check.drift
        feats = drift[drift["feature"] != SCORE_FEATURE]
        rec = {"scenario": name, "as_of": as_of, "problem": r["problem"], "kind": kind, "version": r["version"],
               "users": r["users"], "status": r["status"], "flagged": sorted(feats.loc[feats["drifted"], "feature"]),
               "features": feats["feature"].tolist(), "why_flag": dict(zip(feats["feature"], feats["why"])),
               "score_psi": r["score_psi"], "score_drifted": r["score_drifted"],
               "expected": r["expected_value"], "realised": r["realised_value"],
               "retrain": bool(r["retrain_advised"]), "why": r["why"], "independent": np.nan, "oracle": np.nan,
               "test": r["test_value"], "pred_rate": r["predicted_total"] / r["users"] if r["users"] else np.nan,
               "real_rate": r["realised_total"] / r["users"] if r["users"] else np.nan}
        horizon = {"churn": 7, "purchase": 7, "revenue": 28}[kind]
        if r["status"] == "realised":
            ids = pop["user_id"].astype(str)
            y = labels_from_events(ev, ids, kind, as_of, horizon)
            s = pop[col].to_numpy("float64")
            if kind == "revenue":
                rec["independent"] = gini_norm(y, s)
            else:
                rec["independent"] = float(roc_auc_score(y, s)) if 0 < y.sum() < len(y) else np.nan
                tcol = {"churn": "p_churn", "purchase": "p_purchase"}[kind]
                tr = truth[(truth["cutoff"] == pd.Timestamp(as_of_cutoff(as_of))) & (truth["horizon_days"] == horizon)]
                tp = ids.map(tr.set_index("user_id")[tcol])
                ok = tp.notna().to_numpy()
                if name != "acquisition" and ok.mean() > 0.99 and 0 < y[ok].sum() < ok.sum():
                    rec["oracle"] = float(roc_auc_score(y[ok], tp[ok]))
        rows.append(rec)
    return project, rows, {"monitor_s": seconds, "notes": outcome.notes, "alerts": len(outcome.new_alerts),
                           "reused": f"{reused}/{len(again.checks)}", "realised": sum(
                               c.row["status"] == "realised" for c in outcome.checks)}


def features_by_run(project: Project, problem: str, version: int, role: str, as_of: dt.date,
                    cache: dict) -> pd.DataFrame:
    """The model's features at ``as_of`` over its population in the run's scores file."""
    key = (str(project.workspace.root), problem, as_of)
    if key not in cache:
        project.open_tracking()
        if (problem, version) not in cache:
            cache[(problem, version)] = Manifest.from_dict(tracking.load_model(problem, version=version).manifest,
                                                           problem)
        man = cache[(problem, version)]
        fkey = (str(project.workspace.root), feature_key(man), as_of)  # one pass for models computing alike
        if fkey not in cache:
            events, users = project.tables()
            f = scoring_features(events, users, man, as_of)
            cache[fkey] = f.set_index(f["user_id"].astype(str))
        f = cache[fkey]
        scores = pd.read_parquet(project.workspace.scores_path(as_of))
        inside = scores[in_population_column(role)].fillna(False).astype(bool)
        ids = scores.loc[inside, "user_id"].astype(str)
        cache[key] = f.reindex(ids[ids.isin(f.index)])
    return cache[key]


# ---------------------------------------------------------------- tables

def fmt(v: float, d: int = 3) -> str:
    return "-" if v is None or not np.isfinite(v) else f"{v:.{d}f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--users", type=int, default=3000)
    ap.add_argument("--days", type=int, default=240)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--shift", choices=[*SHIFTS, "all"], default="all")
    ap.add_argument("--csv", type=Path, default=None, help="Write every (scenario, run, model) row here.")
    ap.add_argument("--keep", type=Path, default=None, help="Work in this folder and keep it (default: a temp dir).")
    args = ap.parse_args()
    if args.days < 200:
        ap.error("--days must be at least 200 (training needs ~130 days before T0 = end - 70)")
    shifts = list(SHIFTS) if args.shift == "all" else [args.shift]
    start = time.perf_counter()
    tmp_ctx = tempfile.TemporaryDirectory(prefix="bench-monitor-") if args.keep is None else None
    root = Path(tmp_ctx.name) if tmp_ctx else args.keep
    root.mkdir(parents=True, exist_ok=True)
    try:
        params = SimulateSettings(users=args.users, days=args.days, seed=args.seed, horizons=[7, 28])
        end = params.end
        t0 = end - dt.timedelta(days=70)
        dates = [t0 + dt.timedelta(days=7 * k) for k in range(7)] + [end - dt.timedelta(days=3)]
        sim = root / "sim"
        simulate_to(params, sim)
        truth = pd.read_parquet(sim / "truth.parquet")
        truth["user_id"] = truth["user_id"].astype(str)
        base = root / "ws_base"
        project = Project.at(base, ChurnkitConfig.model_validate(CONFIG))
        ingest(project, [sim], "simulator", as_of=as_of_cutoff(t0))
        timings = {"simulate+ingest": time.perf_counter() - start}
        for name in PROBLEMS:
            train(project, name, TrainOptions(trials=1, seed=args.seed, bgnbd=False))
            promote_problem(project, name)
        timings["train"] = time.perf_counter() - start - timings["simulate+ingest"]
        print(f"{args.users} users x {args.days} days, seed {args.seed}: log {params.start} .. {end - dt.timedelta(days=1)},"
              f" models trained on the log before T0 = {t0}; as-of dates {', '.join(map(str, dates))}", flush=True)
        all_rows: list[dict] = []
        projects: dict[str, Project] = {}
        for name in ["original", *shifts]:
            t = time.perf_counter()
            log_dir = write_copy(sim, root / f"log_{name}", None if name == "original" else name, end, t0)
            projects[name], rows, info = run_scenario(name, base, root, log_dir, dates, end, truth)
            all_rows += rows
            timings[name] = time.perf_counter() - t
            print(f"{name}: scored {len(dates)} dates, monitor {info['monitor_s']:.0f} s, {len(rows)} checks"
                  f" ({info['realised']} realised), {info['alerts']} new alerts; second monitor call reused"
                  f" {info['reused']} checks; notes {info['notes']} ({timings[name]:.0f} s)", flush=True)
        # ground truth per (scenario, as-of, problem)
        t = time.perf_counter()
        cache: dict = {}
        detail = []
        for rec in all_rows:
            names = rec["features"]
            if rec["scenario"] == "original":
                rec["truth"] = []
                continue
            role = {"churn": "churn", "purchase": "purchase", "revenue": "ltv"}[rec["kind"]]
            fo = features_by_run(projects["original"], rec["problem"], rec["version"], role, rec["as_of"], cache)
            fs = features_by_run(projects[rec["scenario"]], rec["problem"], rec["version"], role, rec["as_of"], cache)
            tests = truly_shifted(fo, fs, names)
            rec["truth"] = sorted(n for n, (share, p) in tests.items() if share >= CHANGED_SHARE and p < KS_P)
            for n in set(rec["truth"]) | set(rec["flagged"]):
                detail.append({"scenario": rec["scenario"], "as_of": rec["as_of"], "problem": rec["problem"],
                               "feature": n, "changed": tests[n][0], "ks_p": tests[n][1],
                               "truth": n in rec["truth"], "flagged": n in rec["flagged"],
                               "why": rec["why_flag"].get(n, "")})
        timings["truth"] = time.perf_counter() - t
        control = {(r["as_of"], r["problem"]): set(r["flagged"]) for r in all_rows if r["scenario"] == "original"}
        for rec in all_rows:
            f, tr, names = set(rec["flagged"]), set(rec["truth"]), set(rec["features"])
            new = f - control.get((rec["as_of"], rec["problem"]), set())
            rec |= {"TP": len(f & tr), "FP": len(f - tr), "FN": len(tr - f), "TN": len(names - f - tr),
                    "FP_new": len(new - tr), "n_features": len(names), "new_flags": sorted(new)}
        df = pd.DataFrame(all_rows)
        if args.csv:
            df.drop(columns=["why_flag", "features"]).to_csv(args.csv, index=False)
            pd.DataFrame(detail).to_csv(args.csv.with_name(args.csv.stem + "_features.csv"), index=False)
            df.to_pickle(args.csv.with_suffix(".pkl"))
        report(df, pd.DataFrame(detail), timings, time.perf_counter() - start)
    finally:
        if tmp_ctx is not None:
            tmp_ctx.cleanup()


def report(df: pd.DataFrame, detail: pd.DataFrame, timings: dict, total: float) -> None:
    short = {"churn_ga4": "churn", "purchase_ga4": "purchase", "revenue_ga4": "revenue"}
    print("\n## Per scenario x as-of x problem\n")
    print("FP: flagged but not truly shifted; FP new: of those, not flagged in the control's run at the same"
          " as-of. Headline: ROC-AUC (churn, purchase), normalised Gini (revenue).\n")
    print("| scenario | as-of | problem | users | features | flagged | truly shifted | TP | FP | FP new | FN | TN |"
          " score PSI | test | realised (churnkit) | independent | abs diff | expected | exp - real |"
          " pred rate | real rate | oracle | retrain |")
    print("|" + "---|" * 23)
    for _, r in df.iterrows():
        diff = abs(r["realised"] - r["independent"]) if np.isfinite(r["realised"]) else np.nan
        cls = r["kind"] != "revenue"
        print(f"| {r['scenario']} | {r['as_of']} | {short[r['problem']]} | {r['users']} | {r['n_features']} |"
              f" {len(r['flagged'])} | {len(r['truth'])} | {r['TP']} | {r['FP']} | {r['FP_new']} | {r['FN']} |"
              f" {r['TN']} | {fmt(r['score_psi'], 2)} | {fmt(r['test'])} | {fmt(r['realised'])} |"
              f" {fmt(r['independent'])} | {fmt(diff, 6)} | {fmt(r['expected'])} |"
              f" {fmt(r['expected'] - r['realised'])} | {fmt(r['pred_rate'] if cls else np.nan)} |"
              f" {fmt(r['real_rate'] if cls else np.nan)} | {fmt(r['oracle'])} | {'yes' if r['retrain'] else 'no'} |")
    print("\n## Confusion totals per scenario (features x as-of x problem)\n")
    print("| scenario | checks | TP | FP | FP new | FN | TN | precision | precision (new flags) | recall |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, g in df.groupby("scenario", sort=False):
        tp, fp, fpn, fn, tn = (int(g[c].sum()) for c in ("TP", "FP", "FP_new", "FN", "TN"))
        print(f"| {name} | {len(g)} | {tp} | {fp} | {fpn} | {fn} | {tn} | {fmt(tp / (tp + fp) if tp + fp else np.nan, 2)} |"
              f" {fmt(tp / (tp + fpn) if tp + fpn else np.nan, 2)} | {fmt(tp / (tp + fn) if tp + fn else np.nan, 2)} |")
    print("\n## Realised vs independent, expected vs realised\n")
    print("| scenario | realised runs | max abs(realised - independent) | classifier runs |"
          " max abs(expected - realised) | mean (expected - realised) | runs within 0.03 |")
    print("|---|---|---|---|---|---|---|")
    for name, g in df.groupby("scenario", sort=False):
        real = g[g["status"] == "realised"]
        cls = real[real["kind"] != "revenue"]
        d = (cls["expected"] - cls["realised"]).abs()
        print(f"| {name} | {len(real)} | {fmt((real['realised'] - real['independent']).abs().max(), 6)} | {len(cls)} |"
              f" {fmt(d.max())} | {fmt((cls['expected'] - cls['realised']).mean())} | {int((d <= 0.03).sum())}/{len(cls)} |")
    for name, g in df.groupby("scenario", sort=False):
        cls = g[(g["status"] == "realised") & (g["kind"] != "revenue")]
        for problem, h in cls.groupby("problem"):
            d = (h["expected"] - h["realised"]).abs()
            print(f"- {name} {short[problem]}: max abs(expected - realised) {fmt(d.max())}, mean signed"
                  f" {fmt((h['expected'] - h['realised']).mean())}, within 0.03 {int((d <= 0.03).sum())}/{len(h)}")
    print("\n## Flags per feature\n")
    for name, g in df.groupby("scenario", sort=False):
        flags = pd.Series([f for fl in g["flagged"] for f in fl]).value_counts()
        truth = pd.Series([f for fl in g["truth"] for f in fl]).value_counts()
        new = pd.Series([f for fl in g["new_flags"] for f in fl]).value_counts()
        print(f"- {name}: flagged {', '.join(f'{k} x{v}' for k, v in flags.items()) or 'none'}")
        if name != "original":
            print(f"  - truly shifted: {', '.join(f'{k} x{v}' for k, v in truth.items()) or 'none'}")
            print(f"  - flagged here but not in the control's run: "
                  f"{', '.join(f'{k} x{v}' for k, v in new.items()) or 'none'}")
    print("\n## Truly shifted or newly flagged features, per run (changed share, KS p, churnkit's reason)\n")
    if len(detail):
        ctrl = {(r["as_of"], r["problem"]): set(r["flagged"]) for _, r in df[df["scenario"] == "original"].iterrows()}
        for (name, as_of, problem), g in detail.groupby(["scenario", "as_of", "problem"], sort=False):
            parts = []
            for _, x in g.sort_values(["truth", "flagged"], ascending=False).iterrows():
                mark = "TP" if x["truth"] and x["flagged"] else ("FN" if x["truth"] else "FP")
                if mark == "FP" and x["feature"] in ctrl.get((as_of, problem), set()):
                    continue  # flagged in the control too: listed under the control's flags
                parts.append(f"{x['feature']} [{mark} {x['changed']:.0%}, p={x['ks_p']:.0e}"
                             + (f"; {x['why']}" if x["why"] else "") + "]")
            if parts:
                print(f"- {name} {as_of} {short[problem]}: " + ", ".join(parts))
    print("\n## Advice\n")
    for name, g in df.groupby("scenario", sort=False):
        print(f"- {name}: retrain advised in {int(g['retrain'].sum())}/{len(g)} checks")
    for _, r in df.iterrows():
        if r["status"] != "realised" or r["scenario"] == "original" and r["as_of"] == df["as_of"].min():
            print(f"- {r['scenario']} {r['as_of']} {short[r['problem']]} ({r['status']}): "
                  f"retrain {'yes' if r['retrain'] else 'no'}: {r['why']}")
    print("\nTimings: " + ", ".join(f"{k} {v:.0f} s" for k, v in timings.items()) + f"; total {total:.0f} s")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONHASHSEED", "0")
    main()
