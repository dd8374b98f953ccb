"""Load test of the prediction service on loopback, against in-process scoring of the same rows.

    .venv/bin/python bench/bench_service.py [--workspace DIR] [--duration 20] [--out FILE]

Starts ``churnkit serve`` (cold start = process start to ``/readyz`` 200), then for each
scenario runs N client threads, each with one keep-alive ``http.client`` connection, for
``--duration`` seconds: single-row ``/score_features`` at concurrency 1 and 32, 1000-row
batches at 1 and 4. In-process throughput is the service's own scoring call
(:meth:`churnkit.scoring.scorer.Scorer.predict`, what ``/score_features`` runs) on the same
rows, measured in this run.
Without a scored workspace one is built (simulate, ingest, train x3, promote, score).
"""

from __future__ import annotations

import argparse
import datetime as dt
import http.client
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import SimulateSettings
from churnkit.contracts import as_of_cutoff
from churnkit.flows.ingest import ingest
from churnkit.flows.project import Project
from churnkit.flows.promote import promote_problem
from churnkit.flows.score import score
from churnkit.flows.simulate import write_simulation
from churnkit.flows.train import train
from churnkit.io.warehouse import workspace_events, workspace_users
from churnkit.io.workspace import Workspace
from churnkit.scoring.scorer import Scorer
from churnkit.service.state import Holder, ServiceSettings
from churnkit.simulate import simulate
from churnkit.training.fit import TrainOptions

HERE = Path(__file__).resolve().parent
SCENARIOS = [("single row", 1, 1), ("single row", 1, 32), ("1000-row batch", 1000, 1), ("1000-row batch", 1000, 4),
             ("1000-row batch", 1000, 32)]


def build_workspace(root: Path) -> None:
    project = Project.at(root)
    params = SimulateSettings(users=2000, days=140, seed=5, horizons=[7, 28], cutoff_step_days=7)
    write_simulation(simulate(params), project.workspace.simulation_dir)
    ingest(project, [project.workspace.simulation_dir], "simulator", as_of=as_of_cutoff(params.end))
    for problem in ("churn_ga4", "purchase_ga4", "revenue_ga4"):
        train(project, problem, TrainOptions(trials=1, seed=3, bgnbd=False))
        promote_problem(project, problem)
    score(project, params.end)


def feature_frame(root: Path) -> tuple[pd.DataFrame, Scorer]:
    """Feature rows at the snapshot date through the batch path, and the service's scorer."""
    state = Holder(ServiceSettings(workspace=root.resolve())).load()
    scorer = state.scorer
    as_of = dt.date.fromisoformat(state.snapshot_as_of)
    con = state.connection
    ws = Workspace(root)
    frames = scorer.features(workspace_events(con, ws), workspace_users(con, ws), as_of)
    return frames["churn"], scorer


def bodies(features: pd.DataFrame, names: list[str], rows: int) -> bytes:
    f = features.sample(n=rows, replace=len(features) < rows, random_state=rows)
    out = [{"user_id": uid, "features": {k: (None if pd.isna(v) else float(v)) for k, v in r.items()}}
           for uid, r in zip(f["user_id"], f[names].to_dict("records"))]
    return json.dumps({"rows": out}).encode()


def in_process(scorer: Scorer, features: pd.DataFrame, names: list[str], rows: int, seconds: float) -> dict[str, float]:
    X = features.sample(n=rows, replace=len(features) < rows, random_state=rows)[names].reset_index(drop=True)
    times = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        scorer.predict(X)
        times.append(time.perf_counter() - t0)
    t = np.array(times)
    return {"p50_ms": float(np.median(t) * 1e3), "rows_per_s": float(rows * len(t) / t.sum())}


def load(port: int, body: bytes, rows: int, clients: int, seconds: float) -> dict[str, Any]:
    lat: list[list[float]] = [[] for _ in range(clients)]
    errors: list[list[str]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(i: int) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start.wait()
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            try:
                conn.request("POST", "/score_features", body, {"Content-Type": "application/json"})
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors[i].append(str(resp.status))
            except (OSError, http.client.HTTPException) as err:
                errors[i].append(type(err).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            lat[i].append(time.perf_counter() - t0)
        conn.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    for t in threads:
        t.start()
    t_start = time.perf_counter()
    deadline[0] = t_start + seconds
    start.wait()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t_start
    all_lat = np.array([x for xs in lat for x in xs]) * 1e3
    errs = [e for es in errors for e in es]
    return {
        "requests": len(all_lat), "errors": len(errs), "error_kinds": sorted(set(errs)),
        "p50_ms": float(np.percentile(all_lat, 50)), "p95_ms": float(np.percentile(all_lat, 95)),
        "p99_ms": float(np.percentile(all_lat, 99)),
        "requests_per_s": len(all_lat) / wall, "rows_per_s": len(all_lat) * rows / wall,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, port: int, log: Path, batch_latency_ms: int | None = None) -> tuple[subprocess.Popen, float]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNKIT_", "MLFLOW_"))}
    if batch_latency_ms is not None:
        env["CHURNKIT_BATCH_LATENCY_MS"] = str(batch_latency_ms)
    cmd = [sys.executable, "-m", "churnkit.cli", "--workspace", str(root), "serve", "--port", str(port)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    while time.perf_counter() - t0 < 120:
        if proc.poll() is not None:
            raise SystemExit(f"server exited: see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return proc, time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.05)
    raise SystemExit("server not ready after 120 s")


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, default=HERE / "out" / "service_ws")
    ap.add_argument("--duration", type=float, default=20.0)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "bench_service.json")
    ap.add_argument("--batch-latency-ms", type=int, default=None,
                    help="CHURNKIT_BATCH_LATENCY_MS for the server (default: the service's own)")
    args = ap.parse_args()
    root = args.workspace
    if Workspace(root).latest_scores() is None:
        print(f"building a scored workspace in {root} ...", flush=True)
        build_workspace(root)
    features, scorer = feature_frame(root)
    names = scorer.feature_names
    port = free_port()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    proc, cold = start_server(root, port, args.out.with_suffix(".log"), args.batch_latency_ms)
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "cold_start_s": cold, "users_in_features": len(features), "batch_latency_ms": args.batch_latency_ms,
        "scenarios": [],
    }
    print(f"cold start to ready: {cold:.2f} s", flush=True)
    try:
        for rows in (1, 1000):  # warm the dispatcher's latency model before timing
            load(port, bodies(features, names, rows), rows, 2, 2.0)
        for label, rows, clients in SCENARIOS:
            body = bodies(features, names, rows)
            r = load(port, body, rows, clients, args.duration)
            ref = in_process(scorer, features, names, rows, min(args.duration, 5.0))
            r |= {"label": label, "rows": rows, "clients": clients, "in_process_rows_per_s": ref["rows_per_s"],
                  "in_process_p50_ms": ref["p50_ms"], "ratio_to_in_process": r["rows_per_s"] / ref["rows_per_s"]}
            results["scenarios"].append(r)
            print(f"{label:15s} c={clients:<3d} p50 {r['p50_ms']:.2f} ms  p95 {r['p95_ms']:.2f}  p99 {r['p99_ms']:.2f}"
                  f"  {r['rows_per_s']:,.0f} rows/s  errors {r['errors']}  in-process {ref['rows_per_s']:,.0f} rows/s"
                  f" (p50 {ref['p50_ms']:.2f} ms)  ratio {r['ratio_to_in_process']:.2f}", flush=True)
    finally:
        stop(proc)
    args.out.write_text(json.dumps(results, indent=2))
    print(f"results: {args.out}")


if __name__ == "__main__":
    main()
