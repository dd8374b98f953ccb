"""Snapshot what a small end-to-end run produces, to prove a refactor changed no behaviour.

Runs the CLI (whose command names are stable across refactors) on a small seeded
simulation: simulate -> ingest -> train the three GA4 problems -> promote -> score -> lists.
It then stores, under ``--out``:

- ``metrics.json``: every registered version's test metrics (the ``metric.*`` tags) and
  the training runs' logged metrics, per problem;
- ``scores.parquet``, ``risk.csv``, ``recall.csv``: the scoring run's outputs;
- ``datasets/*.parquet``: the three training sets.

``--compare OTHER`` then checks that two snapshots agree: metrics to 1e-12 (relative),
training sets and scores cell by cell (floats to 1e-12), lists byte for byte.

    python bench/behaviour_snapshot.py --out /tmp/before            # on the old commit
    python bench/behaviour_snapshot.py --out /tmp/after --compare /tmp/before
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

PROBLEMS = ("churn_ga4", "purchase_ga4", "revenue_ga4")


def churnkit(ws: Path, *args: str) -> None:
    cmd = [sys.executable, "-m", "churnkit.cli", "--workspace", str(ws), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(args[:1])} failed:\n{proc.stdout}\n{proc.stderr}")


def run_flow(ws: Path, users: int, days: int, seed: int, trials: int) -> None:
    churnkit(ws, "simulate", "--users", str(users), "--days", str(days), "--seed", str(seed),
             "--horizons", "7,28", "--out", str(ws / "simulation"))
    end = pd.Timestamp("2024-01-01") + pd.Timedelta(days=days)  # the simulation's end: its midnight
    churnkit(ws, "ingest", str(ws / "simulation"), "--source", "simulator", "--as-of", f"{end.date()}T00:00")
    for problem in PROBLEMS:
        churnkit(ws, "train", "--problem", problem, "--trials", str(trials), "--seed", "3", "--no-bgnbd")
        churnkit(ws, "promote", "--problem", problem)
    churnkit(ws, "score")
    churnkit(ws, "risk-list", "--top", "200", "--out", str(ws / "risk.csv"))
    churnkit(ws, "recall-list", "--top", "200", "--out", str(ws / "recall.csv"))


def collect(ws: Path, out: Path) -> None:
    from mlflow import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{ws.resolve() / 'mlflow.db'}")
    metrics: dict[str, dict] = {}
    for problem in PROBLEMS:
        name = f"churnkit-{problem}"
        versions = client.search_model_versions(f"name = '{name}'")
        (mv,) = versions
        mv = client.get_model_version(name, mv.version)
        run = client.get_run(mv.run_id)
        metrics[problem] = {
            "version_tags": {k: v for k, v in sorted(mv.tags.items()) if k.startswith("metric.")},
            "run_metrics": dict(sorted(run.data.metrics.items())),
            "aliases": sorted(mv.aliases),
        }
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, sort_keys=True))
    (scores,) = sorted((ws / "scores").glob("scores_*.parquet"))
    shutil.copy(scores, out / "scores.parquet")
    for name in ("risk.csv", "recall.csv"):
        shutil.copy(ws / name, out / name)
    (out / "datasets").mkdir(exist_ok=True)
    for problem in PROBLEMS:
        shutil.copy(ws / "datasets" / f"{problem}.parquet", out / "datasets" / f"{problem}.parquet")


def same_frame(a: pd.DataFrame, b: pd.DataFrame, what: str) -> list[str]:
    if list(a.columns) != list(b.columns):
        return [f"{what}: columns differ: {sorted(set(a.columns) ^ set(b.columns))}"]
    if len(a) != len(b):
        return [f"{what}: {len(a)} vs {len(b)} rows"]
    problems = []
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            xv, yv = x.to_numpy("float64"), y.to_numpy("float64")
            ok = np.isclose(xv, yv, rtol=1e-12, atol=0, equal_nan=True)
        else:
            ok = (x.astype(str) == y.astype(str)).to_numpy()
        if not ok.all():
            problems.append(f"{what}.{col}: {int((~ok).sum())} of {len(ok)} cells differ")
    return problems


def compare(a: Path, b: Path) -> list[str]:
    problems: list[str] = []
    ma, mb = (json.loads((p / "metrics.json").read_text()) for p in (a, b))
    for problem in PROBLEMS:
        for part in ("version_tags", "run_metrics"):
            x, y = ma[problem][part], mb[problem][part]
            for key in sorted(set(x) | set(y)):
                if key not in x or key not in y:
                    problems.append(f"{problem} {part}: {key} only in one snapshot")
                    continue
                u, v = float(x[key]), float(y[key])
                if not (np.isclose(u, v, rtol=1e-12, atol=0) or (np.isnan(u) and np.isnan(v))):
                    problems.append(f"{problem} {part}: {key} {u!r} vs {v!r}")
    problems += same_frame(pd.read_parquet(a / "scores.parquet"), pd.read_parquet(b / "scores.parquet"), "scores")
    for problem in PROBLEMS:
        problems += same_frame(pd.read_parquet(a / "datasets" / f"{problem}.parquet"),
                               pd.read_parquet(b / "datasets" / f"{problem}.parquet"), problem)
    for name in ("risk.csv", "recall.csv"):
        if (a / name).read_bytes() != (b / name).read_bytes():
            problems.append(f"{name}: files differ")
    return problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--compare", type=Path, help="another snapshot to compare with")
    ap.add_argument("--users", type=int, default=800)
    ap.add_argument("--days", type=int, default=150)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--trials", type=int, default=3)
    ap.add_argument("--keep", action="store_true", help="keep the workspace (printed)")
    args = ap.parse_args()
    ws = Path(tempfile.mkdtemp(prefix="churnkit-snapshot-"))
    try:
        run_flow(ws, args.users, args.days, args.seed, args.trials)
        collect(ws, args.out)
    finally:
        if args.keep:
            print(f"workspace: {ws}")
        else:
            shutil.rmtree(ws, ignore_errors=True)
    print(f"snapshot: {args.out}")
    if args.compare:
        problems = compare(args.out, args.compare)
        for p in problems:
            print(f"DIFFERS {p}")
        print("same behaviour" if not problems else f"{len(problems)} difference(s)")
        raise SystemExit(1 if problems else 0)


if __name__ == "__main__":
    main()
