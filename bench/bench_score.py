"""Benchmark batch scoring and measure how well the risk list catches the churners.

Two parts, each in a fresh child process (peak RSS = ``ru_maxrss`` of that child):

``capture``: on a trained workspace (e.g. the demo's: 5,000 users over 365 days, champions
of churn_ga4 / purchase_ga4 / revenue_ga4), score at the latest simulator truth cutoff with
a 7-day horizon (a week before the data end, the churn champion's own out-of-time test
cutoff) and report, among users in the churn model's population, the share of
(a) realised churners (no activity in the next 7 days) and (b) the truth's expected
churners (sum of ``p_churn``) that fall in the top 10% of the risk list (ranked by value at
risk) and, for comparison, in the top 10% by churn probability alone. Random: 10%.

``scale``: simulate N users over D days (bench/out/score/, generated once; a short period so
1M users fit the box: ~22.5M events for 1M users over 35 days), ingest them, then score the
whole base at the data end with the champions of ``--models`` (trained on the small
workspace: scoring applies models to new data, it does not train them). Timed, as
``Scorer.score_as_of`` does it: features (one ``Scorer.features`` pass), the fits on the batch
(RFM cuts, lifecycle cuts, the medians reasons quote), three models + tier + stage + reason
codes (for the risk ranking's first 1,000 users by default; ``--reasons-for population`` for
every user in the churn population, the default before issue 17); then, in the same process, bare LightGBM
``Booster.predict`` of the three boosters on the same feature matrix (the floor).

    .venv/bin/python bench/bench_score.py --models /tmp/demo-ws --users 1000000 --days 35

``--compare BEFORE AFTER`` checks two runs' scores (``--scores-out``) agree: identical scores,
tiers and stages, and every reason the second gives equal to the first's.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

HERE = Path(__file__).resolve().parent
OUT = HERE / "out" / "score"
sys.path.insert(0, str(HERE.parent / "src"))

from churnkit.config import (
    ChurnkitConfig,
    IngestSettings,
    ScoringSettings,
    SimulateSettings,
    load_source,
)
from churnkit.contracts import as_of_cutoff
from churnkit.datasets.span import data_span
from churnkit.events.ingest import ingest
from churnkit.flows.project import Project
from churnkit.flows.score import load_scorer
from churnkit.flows.simulate import write_simulation
from churnkit.io.warehouse import duckdb_connection, workspace_events, workspace_users
from churnkit.io.workspace import Workspace
from churnkit.scoring.lists import risk_list
from churnkit.simulate import simulate


def peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def tables(ws):
    con = duckdb_connection("8GB")
    return workspace_events(con, ws), workspace_users(con, ws)


def capture(models_ws: Path) -> dict:
    ws = Workspace(models_ws)
    truth = pd.read_parquet(ws.truth_path)
    t7 = truth[truth.horizon_days == 7]
    cut = pd.Timestamp(t7["cutoff"].max())
    as_of = cut.date()
    scorer = load_scorer(Project.at(ws))
    events, users = tables(ws)
    scores = scorer.score_as_of(events, users, as_of)
    pop = scores[scores.churn_in_population.astype(bool)].copy()
    ev = pd.read_parquet(ws.simulation_dir / "events.parquet", columns=["user_id", "ts", "event"])
    ts = pd.to_datetime(ev["ts"], utc=True)
    start = pd.Timestamp(as_of, tz="UTC")
    window = ev[(ts >= start) & (ts < start + pd.Timedelta(days=7)) & (ev.event != "push_sent")]
    pop["churned"] = ~pop.user_id.isin(set(window.user_id))
    tc = t7.assign(cutoff=pd.to_datetime(t7["cutoff"], utc=True))
    tc = tc[tc.cutoff == start][["user_id", "p_churn"]]
    pop = pop.merge(tc, on="user_id", how="left")
    k = int(np.ceil(0.1 * len(pop)))
    by_var = set(risk_list(pop.drop(columns=["churned", "p_churn"]), top=k)["user_id"])
    by_p = set(pop.nlargest(k, "churn_probability")["user_id"])
    by_truth = set(pop.nlargest(k, "p_churn")["user_id"])

    def share(ids, col):
        return float(pop.loc[pop.user_id.isin(ids), col].sum() / pop[col].sum())

    return {
        "as_of": str(as_of), "population": len(pop), "top": k, "realised_churners": int(pop.churned.sum()),
        "realised_top_value_at_risk": share(by_var, "churned"), "realised_top_probability": share(by_p, "churned"),
        "realised_top_truth": share(by_truth, "churned"),
        "expected_top_value_at_risk": share(by_var, "p_churn"), "expected_top_probability": share(by_p, "p_churn"),
        "expected_top_truth": share(by_truth, "p_churn"), "versions": scorer.versions,
    }


def prepare(users: int, days: int) -> Path:
    root = OUT / f"u{users}_d{days}"
    ws = Workspace(root)
    if (root / "ready").exists():
        return root
    params = SimulateSettings(users=users, days=days, seed=5, horizons=[7], cutoff_step_days=days, observable=False)
    t = time.perf_counter()
    write_simulation(simulate(params), ws.simulation_dir)
    summary = ingest([ws.simulation_dir], load_source("simulator"), ws, as_of=as_of_cutoff(params.end),
                     settings=IngestSettings(duckdb_memory_limit="4GB"))
    (root / "ready").write_text(json.dumps({"events": summary["accepted"], "seconds": time.perf_counter() - t}))
    return root


def scale(models_ws: Path, data: Path, threads: int | None, reasons_for: str, scores_out: Path | None) -> dict:
    """``churnkit score``'s work on the big log, step by step as ``Scorer.score_as_of`` does
    it (DuckDB at the project's memory cap), then bare LightGBM on the same feature rows."""
    settings = ScoringSettings(threads=threads, reasons_for=reasons_for)
    project = Project.at(models_ws, ChurnkitConfig(scoring=settings))
    scorer = load_scorer(project)
    events, users = Project.at(data, ChurnkitConfig(scoring=settings)).tables()
    end = data_span(events).end
    t0 = time.perf_counter()
    frames = scorer.features(events, users, end)
    t1 = time.perf_counter()
    scorer.fit_segmenter(frames)
    scorer.fit_stages(events, end)
    scorer.fit_reason_basis(frames)
    t2 = time.perf_counter()
    scores = scorer.score_features(frames, as_of=end)
    t3 = time.perf_counter()
    X = frames["churn"][scorer.models["churn"].features].to_numpy("float64")
    nthreads = threads if threads and threads > 0 else (os.cpu_count() or 1)
    b0 = time.perf_counter()
    for rm in scorer.models.values():
        m = rm.model
        boosters = [m.booster_] if hasattr(m, "booster_") else [c.booster_ for c in _ltv_boosters(m)]
        for b in boosters:
            np.asarray(b.predict(X, num_threads=nthreads))
    b1 = time.perf_counter()
    if scores_out is not None:
        scores.to_parquet(scores_out, index=False)
    return {
        "users_scored": len(scores), "events": json.loads((data / "ready").read_text())["events"],
        "reasons_for": reasons_for, "reasons_rows": int(scores["reason_1"].notna().sum()),
        "population": int(scores.churn_in_population.fillna(False).sum()),
        "features_s": t1 - t0, "fits_s": t2 - t1, "models_and_reasons_s": t3 - t2, "total_s": t3 - t0,
        "bare_lightgbm_s": b1 - b0, "ratio": (t3 - t0) / (b1 - b0),
        "peak_rss_mib": peak_rss_mib(), "threads": threads, "as_of": str(end),
    }


def compare(before: Path, after: Path) -> dict:
    """Scores of two runs on the same data: every column but the reasons must be equal, and
    the reasons of every row both runs explained must be the same texts."""
    a, b = pd.read_parquet(before), pd.read_parquet(after)
    assert list(a["user_id"]) == list(b["user_id"]), "different users or order"
    reasons = [c for c in a.columns if c.startswith("reason_")]
    worst = {}
    for col in a.columns.difference(reasons):
        x, y = a[col], b[col]
        if pd.api.types.is_float_dtype(x):
            xv, yv = x.to_numpy("float64"), y.to_numpy("float64")
            diff = np.nanmax(np.abs(xv - yv), initial=0.0)
            # two runs' features may differ in the last bit of a float sum (DuckDB adds in
            # parallel): that moves a score by ~1e-17, or, for a value on a split threshold,
            # sends the row down another branch; counted, not hidden
            assert (x.isna() == y.isna()).all(), f"{col}: missing in one run only"
            worst[col] = {"max_abs_diff": float(diff), "rows_not_bit_identical": int(((xv != yv) & ~np.isnan(xv)).sum()),
                          "rows_off_by_more_than_1e-12": int((np.abs(xv - yv) > 1e-12).sum())}
        else:
            assert x.astype(str).equals(y.astype(str)), f"{col}: differs"
    given = b[reasons].notna().any(axis=1) & a[reasons].notna().any(axis=1)  # explained by both runs
    same = (a.loc[given, reasons].astype(str) == b.loc[given, reasons].astype(str)).all(axis=None)
    assert same, "a reason text differs"
    return {"rows": len(a), "columns_equal": len(a.columns) - len(reasons), "floats": worst, "reason_rows_before":
            int(a[reasons].notna().any(axis=1).sum()), "reason_rows_after": int(b[reasons].notna().any(axis=1).sum()),
            "reason_rows_compared": int(given.sum()), "reasons_identical_where_both_given": bool(same)}


def _ltv_boosters(model):
    """Every LightGBM model an LTVModel prediction touches: the chosen one and the hurdle
    parts its interval reads."""
    out = []
    for chosen in (model.model_, model.candidates_["hurdle"]):
        for attr in ("purchase_model_", "spend_model_", "model_"):
            part = getattr(chosen, attr, None)
            if part is not None and hasattr(part, "booster_") and all(part is not o for o in out):
                out.append(part)
    return out


def child(args: list[str]) -> dict:
    proc = subprocess.run([sys.executable, __file__, *args], check=False, capture_output=True, text=True)
    if proc.returncode != 0:
        raise SystemExit(proc.stderr[-3000:])
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", type=Path, required=True, help="Workspace with champions (e.g. the demo's).")
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--days", type=int, default=35)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--case", choices=["capture", "prepare", "scale"])
    ap.add_argument("--data", type=Path)
    ap.add_argument("--reasons-for", default="top", choices=["top", "population", "all"],
                    help="who gets reasons (scoring.reasons_for; 'population' was the default before 'top')")
    ap.add_argument("--scores-out", type=Path, help="write the scale case's scores here (for --compare)")
    ap.add_argument("--compare", type=Path, nargs=2, metavar=("BEFORE", "AFTER"),
                    help="check two scores files of the same data agree (see compare())")
    a = ap.parse_args()
    if a.compare:
        print(json.dumps(compare(*a.compare), indent=2))
        return
    if a.case == "capture":
        print(json.dumps(capture(a.models)))
    elif a.case == "prepare":
        print(json.dumps({"data": str(prepare(a.users, a.days)), "peak_rss_mib": peak_rss_mib()}))
    elif a.case == "scale":
        print(json.dumps(scale(a.models, a.data, a.threads, a.reasons_for, a.scores_out)))
    else:
        result = {"capture": child(["--models", str(a.models), "--case", "capture"])}
        print(json.dumps(result["capture"], indent=2), flush=True)
        prep = child(["--models", str(a.models), "--users", str(a.users), "--days", str(a.days), "--case", "prepare"])
        extra = ["--threads", str(a.threads)] if a.threads is not None else []
        extra += ["--reasons-for", a.reasons_for, *(["--scores-out", str(a.scores_out)] if a.scores_out else [])]
        result["scale"] = child(["--models", str(a.models), "--case", "scale", "--data", prep["data"], *extra])
        result["scale"]["prepare_peak_rss_mib"] = prep["peak_rss_mib"]
        print(json.dumps(result["scale"], indent=2))


if __name__ == "__main__":
    main()
