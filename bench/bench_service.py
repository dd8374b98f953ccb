"""Load test of the prediction service on loopback, against in-process scoring of the same rows.

    PYTHONPATH=src .venv/bin/python bench/bench_service.py [--workspace DIR] [--duration 20] [--soak 60]
        [--warmup 5] [--out FILE] [--record DIR | --compare-with DIR] [--server-src DIR]

Starts ``churnkit serve`` (cold start = process start to ``/readyz`` 200), then for each
scenario runs N client threads, each with one keep-alive ``http.client`` connection, for
``--duration`` seconds:

- ``/healthz`` at one client: the round trip of this server and client with no work, the
  yardstick of the single-row target (``/score_features`` p50 at most 2x it);
- single-row ``/score_features`` at 1 and 32 clients;
- 1000-row batches at 1, 4 and 32 clients: rows/s against in-process throughput, i.e. the
  service's own scoring call (:meth:`churnkit.scoring.scorer.Scorer.predict_matrix`, what
  ``/score_features`` runs once the rows are a matrix; before the matrix path it was
  ``Scorer.predict``) on the same rows in this process, measured in this run (target: at
  least half of it at one client). Everything else a request costs (HTTP, JSON parsing and
  validation, building the matrix, batching, encoding) is the gap;
- the same 1000 rows at one client as an Arrow IPC body (``Content-Type:
  application/vnd.apache.arrow.stream``), against the same in-process reference;
- the soak (``--soak`` seconds, 0 to skip): 32 clients for a minute, every fourth posting
  1000-row batches and the others single rows; every answer must be a 200;
- for context (``--no-bare`` skips it): ``/healthz``, a single row and a 1000-row batch on
  ``bare_service.py``,
  a BentoML service with the same request model and settings that scores nothing, so the
  framework's own cost of an API call is measured in the same run.

Each scenario first runs its own traffic for ``--warmup`` seconds, untimed: BentoML's
adaptive batcher holds a request back for up to the average queue wait it has observed, and
after 1000-row traffic that average stays high for tens of seconds, so a single-row
scenario timed straight after a batch scenario measures the batcher's memory of it (p50
15.7 ms instead of 5-9 ms on the busy 2-core box).

``--record DIR`` / ``--compare-with DIR`` skip the load and record the answers to a fixed
request set (:mod:`service_responses`), or record them again from the requests saved in
DIR and compare bit for bit. ``--server-src`` starts the server on another checkout's
``src`` (the "before" recording). Without a scored workspace one is built (simulate,
ingest, train x3, promote, score).
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
import tempfile
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
import service_responses  # a sibling script module, not a package

HERE = Path(__file__).resolve().parent
ARROW_BATCH = "1000 rows, Arrow body"
"""The same 1000 rows posted as an Arrow IPC stream (``Content-Type:
application/vnd.apache.arrow.stream``); the answer is the same JSON."""
ARROW = "application/vnd.apache.arrow.stream"
SCENARIOS = [("/healthz", 0, 1), ("single row", 1, 1), ("single row", 1, 32), ("1000-row batch", 1000, 1),
             ("1000-row batch", 1000, 4), ("1000-row batch", 1000, 32), (ARROW_BATCH, 1000, 1)]
SOAK_CLIENTS = 32
SOAK_BATCH_EVERY = 4
"""In the soak every fourth client posts 1000-row batches, the others single rows."""
TARGET_SINGLE_TO_HEALTHZ = 2.0
TARGET_BATCH_TO_IN_PROCESS = 0.5


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


def sample(features: pd.DataFrame, rows: int) -> pd.DataFrame:
    """The ``rows`` feature rows every format of a scenario sends (and the in-process
    reference scores): the same draw for the same count."""
    return features.sample(n=rows, replace=len(features) < rows, random_state=rows)


def bodies(features: pd.DataFrame, names: list[str], rows: int) -> bytes:
    f = sample(features, rows)
    out = [{"user_id": uid, "features": {k: (None if pd.isna(v) else float(v)) for k, v in r.items()}}
           for uid, r in zip(f["user_id"], f[names].to_dict("records"))]
    return json.dumps({"rows": out}).encode()


def arrow_body(features: pd.DataFrame, names: list[str], rows: int) -> bytes:
    """The rows of :func:`bodies` as an Arrow IPC stream: ``user_id`` and one column per feature."""
    import pyarrow as pa

    f = sample(features, rows)
    table = pa.table({"user_id": f["user_id"].astype(str).tolist(),
                      **{n: pa.array(f[n].to_numpy("float64"), from_pandas=True) for n in names}})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def in_process(scorer: Scorer, features: pd.DataFrame, names: list[str], rows: int, seconds: float) -> dict[str, float]:
    """The service's scoring call alone, on the same rows as a float64 matrix (no HTTP, no JSON)."""
    X = sample(features, rows)[names].reset_index(drop=True)
    A = np.ascontiguousarray(X.to_numpy("float64"))
    times = []
    t_end = time.perf_counter() + seconds
    while time.perf_counter() < t_end:
        t0 = time.perf_counter()
        scorer.predict_matrix(A)
        times.append(time.perf_counter() - t0)
    t = np.array(times)
    return {"p50_ms": float(np.median(t) * 1e3), "rows_per_s": float(rows * len(t) / t.sum())}


Request = tuple[str, str, bytes | None, int] | tuple[str, str, bytes | None, int, str]
"""(method, path, body, rows[, content type]) one client sends over and over."""


def load(port: int, requests: list[Request], seconds: float) -> dict[str, Any]:
    """One thread per entry of ``requests``, each repeating its request over one keep-alive
    connection until the deadline: latencies, errors by kind, rows/s."""
    clients = len(requests)
    lat: list[list[float]] = [[] for _ in range(clients)]
    rows_done = [0] * clients
    errors: list[list[str]] = [[] for _ in range(clients)]
    start = threading.Barrier(clients + 1)
    deadline = [0.0]

    def client(i: int) -> None:
        method, path, body, rows = requests[i][:4]
        kind = requests[i][4] if len(requests[i]) > 4 else "application/json"
        headers = {"Content-Type": kind} if body is not None else {}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
        start.wait()
        while time.perf_counter() < deadline[0]:
            t0 = time.perf_counter()
            try:
                conn.request(method, path, body, headers)
                resp = conn.getresponse()
                resp.read()
                if resp.status != 200:
                    errors[i].append(str(resp.status))
                else:
                    rows_done[i] += rows
            except (OSError, http.client.HTTPException) as err:
                errors[i].append(type(err).__name__)
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
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
        "requests_per_s": len(all_lat) / wall, "rows_per_s": sum(rows_done) / wall,
    }


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(root: Path, port: int, log: Path, batch_latency_ms: int | None = None,
                 src: Path | None = None, extra_env: dict[str, str] | None = None) -> tuple[subprocess.Popen, float]:
    """``churnkit serve`` in its own process group; ``src`` replaces the server's PYTHONPATH."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNKIT_", "MLFLOW_"))}
    if batch_latency_ms is not None:
        env["CHURNKIT_BATCH_LATENCY_MS"] = str(batch_latency_ms)
    if src is not None:
        env["PYTHONPATH"] = str(src.resolve())
    env |= extra_env or {}
    cmd = [sys.executable, "-m", "churnkit.cli", "--workspace", str(root), "serve", "--port", str(port)]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env, start_new_session=True)
    wait_ready(proc, port, log, "server")
    return proc, time.perf_counter() - t0


def wait_ready(proc: subprocess.Popen, port: int, log: Path, what: str, seconds: float = 120) -> None:
    """Until ``/readyz`` answers 200; the server is stopped and the run ends if it never does."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited: see {log}")
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            conn.request("GET", "/readyz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.05)
    stop(proc)
    raise SystemExit(f"{what} not ready after {seconds:.0f} s")


def start_bare(port: int, log: Path) -> subprocess.Popen:
    """``bare_service.py`` (BentoML with the same request model, no scoring) on ``port``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CHURNKIT_", "MLFLOW_"))}
    env["BENTOML_DO_NOT_TRACK"] = "true"
    cmd = [sys.executable, "-m", "bentoml", "serve", "bare_service.py:Bare", "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=HERE, stdout=log.open("wb"), stderr=subprocess.STDOUT, env=env,
                            start_new_session=True)
    wait_ready(proc, port, log, "bare server")
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)


def responses(args: argparse.Namespace, features: pd.DataFrame, names: list[str]) -> int:
    """``--record`` / ``--compare-with``: answers to the fixed request set; exit status."""
    if args.compare_with is not None:
        requests = service_responses.load_requests(args.compare_with)
        target = args.record or Path(tempfile.mkdtemp(prefix="svc-after-"))
    else:
        requests = service_responses.request_set(features, names)
        target = args.record
    port = free_port()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    proc, _ = start_server(args.workspace, port, args.out.with_suffix(".record.log"), src=args.server_src,
                           extra_env={"CHURNKIT_MAX_ROWS": str(service_responses.MAX_ROWS)})
    try:
        service_responses.record(port, requests, target)
    finally:
        stop(proc)
    print(f"recorded {len(requests)} answers in {target}")
    if args.compare_with is None:
        return 0
    n, found, worst = service_responses.compare(args.compare_with, target)
    for line in found[:40]:
        print("  " + line)
    if found:
        print(f"DIFFERENT: {len(found)} differences in {n} answers (largest float difference {worst:.3g})")
        return 1
    print(f"IDENTICAL: {n} answers (status, JSON keys in order, texts; floats bit for bit)")
    return 0


def scenario_requests(label: str, rows: int, clients: int, features: pd.DataFrame, names: list[str]) -> list[Request]:
    if label == "/healthz":
        return [("GET", "/healthz", None, 0)] * clients
    if label == ARROW_BATCH:
        return [("POST", "/score_features", arrow_body(features, names, rows), rows, ARROW)] * clients
    return [("POST", "/score_features", bodies(features, names, rows), rows)] * clients


def soak_requests(features: pd.DataFrame, names: list[str]) -> list[Request]:
    single = ("POST", "/score_features", bodies(features, names, 1), 1)
    batch = ("POST", "/score_features", bodies(features, names, 1000), 1000)
    return [batch if i % SOAK_BATCH_EVERY == 0 else single for i in range(SOAK_CLIENTS)]


def table(results: dict[str, Any]) -> str:
    """The scenarios as a Markdown table, then the two targets with their verdicts."""
    header = ("| scenario | clients | p50 ms | p95 ms | p99 ms | req/s | rows/s | errors"
              " | in-process rows/s (p50 ms) | ratio |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results["scenarios"]:
        ref = (f"{r['in_process_rows_per_s']:,.0f} ({r['in_process_p50_ms']:.2f})"
               if "in_process_rows_per_s" in r else "")
        ratio = r.get("ratio")
        lines.append(f"| {r['label']} | {r['clients']} | {r['p50_ms']:.2f} | {r['p95_ms']:.2f} | {r['p99_ms']:.2f}"
                     f" | {r['requests_per_s']:,.0f} | {r['rows_per_s']:,.0f} | {r['errors']}"
                     f"{' ' + ','.join(r['error_kinds']) if r['errors'] else ''} | {ref}"
                     f" | {'' if ratio is None else f'{ratio:.2f}'} |")
    t = results["targets"]
    lines.append("")
    lines += [f"- {name}: {v['value']:.2f}" + ("" if v["target"] == "-" else
              f" (target {v['target']}) {'met' if v['met'] else 'MISSED'}") for name, v in t.items()]
    return "\n".join(lines)


def targets(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    by = {(r["label"], r["clients"]): r for r in scenarios}
    out: dict[str, Any] = {}
    if ("/healthz", 1) in by and ("single row", 1) in by:
        v = by["single row", 1]["p50_ms"] / by["/healthz", 1]["p50_ms"]
        out["single-row p50 / healthz p50"] = {"value": v, "target": f"<= {TARGET_SINGLE_TO_HEALTHZ}",
                                               "met": v <= TARGET_SINGLE_TO_HEALTHZ}
    if ("bare: /healthz", 1) in by and ("bare: single row", 1) in by:
        v = by["bare: single row", 1]["p50_ms"] / by["bare: /healthz", 1]["p50_ms"]
        out["bare BentoML single-row p50 / its healthz p50 (context, no target)"] = {
            "value": v, "target": "-", "met": True}
    if ("bare: 1000-row batch", 1) in by and ("1000-row batch", 1) in by:
        v = by["bare: 1000-row batch", 1]["p50_ms"] / by["1000-row batch", 1]["p50_ms"]
        out["bare BentoML 1000-row p50 / churnkit's (context, no target)"] = {"value": v, "target": "-", "met": True}
    if ("1000-row batch", 1) in by:
        v = by["1000-row batch", 1]["ratio"]
        out["1000-row batch rows/s / in-process"] = {"value": v, "target": f">= {TARGET_BATCH_TO_IN_PROCESS}",
                                                     "met": v >= TARGET_BATCH_TO_IN_PROCESS}
    if (ARROW_BATCH, 1) in by:
        v = by[ARROW_BATCH, 1]["ratio"]
        out["1000 rows as an Arrow body, rows/s / in-process"] = {
            "value": v, "target": f">= {TARGET_BATCH_TO_IN_PROCESS}", "met": v >= TARGET_BATCH_TO_IN_PROCESS}
    soak = [r for r in scenarios if r["label"] == "soak"]
    if soak:
        out["soak errors"] = {"value": float(soak[0]["errors"]), "target": "0", "met": soak[0]["errors"] == 0}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--workspace", type=Path, default=HERE / "out" / "service_ws")
    ap.add_argument("--duration", type=float, default=20.0, help="seconds per scenario")
    ap.add_argument("--soak", type=float, default=60.0, help="seconds of the 32-client soak (0: skip)")
    ap.add_argument("--warmup", type=float, default=5.0,
                    help="seconds of each scenario's own traffic before it is timed (0: none)")
    ap.add_argument("--out", type=Path, default=HERE / "out" / "bench_service.json")
    ap.add_argument("--batch-latency-ms", type=int, default=None,
                    help="CHURNKIT_BATCH_LATENCY_MS for the server (default: the service's own)")
    ap.add_argument("--record", type=Path, default=None, help="record answers to the fixed request set here")
    ap.add_argument("--compare-with", type=Path, default=None,
                    help="replay the requests recorded in this directory and compare the answers bit for bit")
    ap.add_argument("--server-src", type=Path, default=None, help="run the server on this src directory")
    ap.add_argument("--no-bare", action="store_true",
                    help="skip the bare BentoML service (bare_service.py) timed for context")
    args = ap.parse_args()
    root = args.workspace
    if Workspace(root).latest_scores() is None:
        print(f"building a scored workspace in {root} ...", flush=True)
        build_workspace(root)
    features, scorer = feature_frame(root)
    names = scorer.feature_names
    if args.record is not None or args.compare_with is not None:
        raise SystemExit(responses(args, features, names))
    port = free_port()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    proc, cold = start_server(root, port, args.out.with_suffix(".log"), args.batch_latency_ms, args.server_src)
    results: dict[str, Any] = {
        "date": dt.date.today().isoformat(), "machine": f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}",
        "cold_start_s": cold, "users_in_features": len(features), "batch_latency_ms": args.batch_latency_ms,
        "duration_s": args.duration, "scenarios": [],
    }
    print(f"cold start to ready: {cold:.2f} s", flush=True)
    try:
        for rows in (1, 1000):  # warm the dispatcher's latency model before timing
            load(port, scenario_requests("warm", rows, 2, features, names), 2.0)
        for label, rows, clients in SCENARIOS:
            requests = scenario_requests(label, rows, clients, features, names)
            if args.warmup > 0:  # steady state: BentoML's batcher keeps its wait model from the last traffic
                load(port, requests, args.warmup)
            r = load(port, requests, args.duration)
            r |= {"label": label, "rows": rows, "clients": clients}
            if rows:
                ref = in_process(scorer, features, names, rows, min(args.duration, 5.0))
                r |= {"in_process_rows_per_s": ref["rows_per_s"], "in_process_p50_ms": ref["p50_ms"],
                      "ratio": r["rows_per_s"] / ref["rows_per_s"]}
            results["scenarios"].append(r)
            print(f"{label:15s} c={clients:<3d} p50 {r['p50_ms']:.2f} ms  p95 {r['p95_ms']:.2f}  p99 {r['p99_ms']:.2f}"
                  f"  {r['rows_per_s']:,.0f} rows/s  errors {r['errors']}"
                  + (f"  in-process {r['in_process_rows_per_s']:,.0f} rows/s (p50 {r['in_process_p50_ms']:.2f} ms)"
                     f"  ratio {r['ratio']:.2f}" if rows else ""), flush=True)
        if args.soak > 0:
            r = load(port, soak_requests(features, names), args.soak)
            r |= {"label": "soak", "rows": None, "clients": SOAK_CLIENTS, "seconds": args.soak}
            results["scenarios"].append(r)
            print(f"soak            c={SOAK_CLIENTS} {args.soak:.0f} s  {r['requests']} requests  errors {r['errors']}"
                  f" {r['error_kinds']}", flush=True)
    finally:
        stop(proc)
    if not args.no_bare:  # the framework's own cost for this request, same run, same client
        port = free_port()
        bare = start_bare(port, args.out.with_name(args.out.stem + "_bare.log"))
        try:
            for label, rows in (("bare: /healthz", 0), ("bare: single row", 1), ("bare: 1000-row batch", 1000)):
                requests = scenario_requests(label.removeprefix("bare: "), rows, 1, features, names)
                if args.warmup > 0:
                    load(port, requests, args.warmup)
                r = load(port, requests, args.duration) | {"label": label, "rows": rows, "clients": 1}
                results["scenarios"].append(r)
                print(f"{label:15s} c=1   p50 {r['p50_ms']:.2f} ms  {r['rows_per_s']:,.0f} rows/s  errors {r['errors']}", flush=True)
        finally:
            stop(bare)
    results["targets"] = targets(results["scenarios"])
    args.out.write_text(json.dumps(results, indent=2))
    print()
    print(table(results))
    print(f"\nresults: {args.out}")


if __name__ == "__main__":
    main()
