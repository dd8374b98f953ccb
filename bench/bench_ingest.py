"""Benchmark `churnkit ingest` on a large generated CSV against a plain DuckDB CSV->Parquet copy.

Generates (once per row count, in bench/out/, gitignored) a CSV log with a few percent of bad
rows of every kind, exact duplicate lines and some quoted fields, then runs in fresh child
processes, one after the other:

1. ``churnkit ingest`` (validation, quarantine, global dedup, month partitions);
2. the baseline: DuckDB ``read_csv`` + ``COPY ... TO parquet`` of the same file, no validation,
   under the same memory limit.

Peak RSS of each child is sampled with psutil (whole process tree) every 50 ms.

    .venv/bin/python bench/bench_ingest.py                 # 10,000,000 rows
    .venv/bin/python bench/bench_ingest.py --rows 1000000
    .venv/bin/python bench/bench_ingest.py --rows 1000000 --save-outputs DIR    # record outputs
    .venv/bin/python bench/bench_ingest.py --rows 1000000 --compare-with DIR    # same as recorded?

The printout ends with one line per figure: the bare copy's and churnkit's wall and peak RSS,
their ratio (of the whole command, and of ``ingest()`` alone: the CLI's imports are the
difference), the counts and whether ``read = accepted + duplicates + rejected`` holds.
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
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import pyarrow as pa
import pyarrow.compute as pc
from ingest_outputs import compare, describe, save
from machine import cpu_model  # bench/machine.py (the script's own folder is on sys.path)

from churnkit.io.workspace import Workspace

HERE = Path(__file__).resolve().parent
EVENTS = np.array(["session", "view", "add_to_cart", "purchase", "push_open"])
EVENT_P = np.array([0.35, 0.4, 0.1, 0.1, 0.05])
CATEGORIES = np.array(["books", "music", "electronics", "toys", "garden", "food", "toys, games"])
CATEGORY_P = np.array([0.2, 0.2, 0.2, 0.15, 0.1, 0.14, 0.01])  # the last one needs quoting
CHANNELS = np.array(["web", "ios", "android", "email"])
BAD_KINDS = [
    "fields",
    "user",
    "ts",
    "future",
    "event",
    "amount_text",
    "amount_negative",
    "amount_nan",
]

SOURCE_YAML = """\
name: bench
description: generated benchmark log
csv:
  delimiter: ","
fields:
  user_id: user_id
  ts:
    column: ts
    formats: ["%Y-%m-%d %H:%M:%S", iso8601]
    timezone: Europe/Berlin
  event: event
  amount: amount
  category: category
  channel: channel
vocabulary: [session, view, add_to_cart, purchase, push_open]
allow_negative_amount: false
duplicates: drop
"""


def generate(path: Path, rows: int, seed: int, bad_rate: float, dup_rate: float) -> dict:
    """Write the CSV in 1M-row blocks with vectorised Arrow string ops; returns what was planted."""
    rng = np.random.default_rng(seed)
    start = int(dt.datetime(2024, 1, 1, tzinfo=dt.UTC).timestamp())
    year_s = 366 * 86400
    planted = {"bad": 0, "duplicates": 0}
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(b"user_id,ts,event,amount,category,channel\n")
        done = 0
        while done < rows:
            n = min(1_000_000, rows - done)
            users = pc.utf8_lpad(
                pa.array(rng.integers(0, max(rows // 20, 1), n)).cast(pa.string()), 7, "0"
            )
            users = pc.binary_join_element_wise("u", users, "")
            secs = start + rng.integers(0, year_s, n)
            ts = pc.strftime(pa.array(secs, pa.timestamp("s")), "%Y-%m-%d %H:%M:%S")
            ev_idx = rng.choice(len(EVENTS), n, p=EVENT_P)
            event = pa.array(EVENTS[ev_idx])
            cents = pa.array(rng.integers(100, 20_000, n))
            whole = pc.divide(cents, 100).cast(pa.string())
            frac = pc.utf8_lpad(
                pc.subtract(cents, pc.multiply(pc.divide(cents, 100), 100)).cast(pa.string()),
                2,
                "0",
            )
            amount = pc.binary_join_element_wise(whole, frac, ".")
            amount = pc.if_else(pa.array(EVENTS[ev_idx] == "purchase"), amount, "")
            cat = CATEGORIES[rng.choice(len(CATEGORIES), n, p=CATEGORY_P)]
            category = pa.array(
                np.where(
                    np.char.find(cat.astype(str), ",") >= 0,
                    np.char.add(np.char.add('"', cat), '"'),
                    cat,
                )
            )
            channel = pa.array(CHANNELS[rng.integers(0, len(CHANNELS), n)])
            cols = [users, ts, event, amount, category, channel]

            bad = rng.random(n) < bad_rate
            kinds = rng.integers(0, len(BAD_KINDS), n)
            planted["bad"] += int(bad.sum())
            for k, kind in enumerate(BAD_KINDS):
                m = pa.array(bad & (kinds == k))
                if kind == "user":
                    cols[0] = pc.if_else(m, "", cols[0])
                elif kind == "ts":
                    cols[1] = pc.if_else(m, "2024-13-45 99:00:00", cols[1])
                elif kind == "future":
                    cols[1] = pc.if_else(m, "2031-01-01 00:00:00", cols[1])
                elif kind == "event":
                    cols[2] = pc.if_else(m, "teleport", cols[2])
                elif kind == "amount_text":
                    cols[3] = pc.if_else(m, "12.50 EUR", cols[3])
                elif kind == "amount_negative":
                    cols[3] = pc.if_else(m, "-5.00", cols[3])
                elif kind == "amount_nan":
                    cols[3] = pc.if_else(m, "NaN", cols[3])
            line = pc.binary_join_element_wise(*cols, ",")
            short = pc.binary_join_element_wise(*cols[:5], ",")
            line = pc.if_else(pa.array(bad & (kinds == BAD_KINDS.index("fields"))), short, line)

            # exact copies of an earlier line of the block (only of good lines, so counts are known)
            dup = (rng.random(n) < dup_rate) & ~bad
            dup[:1000] = False
            src = np.arange(n)
            back = rng.integers(1, 1000, n)
            src[dup] = src[dup] - back[dup]
            dup &= ~bad[src]
            src = np.where(dup, src, np.arange(n))
            # a duplicate of a duplicate still counts once per copy; resolve chains to the origin
            while True:
                nxt = src[src]
                if np.array_equal(nxt, src):
                    break
                src = nxt
            planted["duplicates"] += int(dup.sum())
            line = pc.binary_join_element_wise(line.take(pa.array(src)), "\n", "")
            offsets = np.frombuffer(line.buffers()[1], dtype=np.int32)[
                line.offset : line.offset + n + 1
            ]
            f.write(memoryview(line.buffers()[2])[offsets[0] : offsets[-1]])
            done += n
    tmp.replace(path)
    return planted


class PeakRss:
    """Samples the RSS of a process tree in a thread; ``peak`` in bytes."""

    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self.proc = psutil.Process(pid)
        self.every = every_s
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                procs = [self.proc, *self.proc.children(recursive=True)]
                self.peak = max(self.peak, sum(p.memory_info().rss for p in procs))
            except psutil.Error:
                pass
            time.sleep(self.every)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def timed(cmd: list[str], cwd: Path) -> tuple[float, int, str, float]:
    """Wall seconds, peak RSS, output and CPU seconds (user + system) of the child: CPU time
    barely moves when other work shares the machine, wall time does."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    sampler = PeakRss(proc.pid)
    out, _ = proc.communicate()
    wall = time.perf_counter() - t0
    peak = sampler.stop()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if proc.returncode != 0:
        raise SystemExit(f"command failed ({proc.returncode}): {' '.join(cmd)}\n{out}")
    return wall, peak, out, cpu


BASELINE = """\
import sys, duckdb
src, dst, mem, tmp = sys.argv[1:5]
con = duckdb.connect(config={"memory_limit": mem})
con.execute(f"SET temp_directory = '{tmp}'").fetchall()
con.execute(f"COPY (SELECT * FROM read_csv('{src}', header=true, ignore_errors=true)) TO '{dst}' (FORMAT parquet)").fetchall()
print(con.execute(f"SELECT count(*) FROM read_parquet('{dst}')").fetchall()[0][0])
"""


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--rows", type=int, default=10_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--bad-rate", type=float, default=0.03)
    ap.add_argument("--dup-rate", type=float, default=0.01)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--memory-limit", default="2GB")
    ap.add_argument("--chunk-rows", type=int, default=200_000)
    ap.add_argument("--save-outputs", type=Path, help="record the ingest's outputs here (ingest_outputs.py)")
    ap.add_argument("--compare-with", type=Path, help="compare the ingest's outputs with this recording")
    args = ap.parse_args()

    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    csv_path = out / f"events_{args.rows}.csv"
    meta_path = csv_path.with_suffix(".json")
    if not (csv_path.exists() and meta_path.exists()):
        t0 = time.perf_counter()
        planted = generate(csv_path, args.rows, args.seed, args.bad_rate, args.dup_rate)
        meta_path.write_text(json.dumps(planted))
        print(
            f"generated {csv_path} ({csv_path.stat().st_size / 2**20:,.0f} MiB) in {time.perf_counter() - t0:.1f} s"
        )
    planted = json.loads(meta_path.read_text())

    (out / "bench_source.yaml").write_text(SOURCE_YAML)
    (out / "bench_config.yaml").write_text(
        f"ingest:\n  chunk_rows: {args.chunk_rows}\n  duckdb_memory_limit: {args.memory_limit}\n"
    )
    ws = out / "ws"
    ingest_cmd = [
        sys.executable,
        "-m",
        "churnkit.cli",
        "--config",
        str(out / "bench_config.yaml"),
        "--workspace",
        str(ws),
        "ingest",
        str(csv_path),
        "--source",
        str(out / "bench_source.yaml"),
        "--as-of",
        "2025-06-30",
        "--json",
    ]
    load_before = os.getloadavg()[0]
    wall, peak, _text, cpu = timed(ingest_cmd, HERE.parent)
    summary = json.loads(Workspace(ws).summary_path.read_text())

    base_dst = out / "baseline.parquet"
    base_tmp = out / "baseline_tmp"
    base_cmd = [
        sys.executable,
        "-c",
        BASELINE,
        str(csv_path),
        str(base_dst),
        args.memory_limit,
        str(base_tmp),
    ]
    b_wall, b_peak, b_text, b_cpu = timed(base_cmd, HERE.parent)
    load_after = os.getloadavg()[0]

    rows = summary["read"]
    result = {
        "date": dt.date.today().isoformat(),
        "machine": {
            "nproc": os.cpu_count(),
            "ram_gib": round(psutil.virtual_memory().total / 2**30, 1),
            "cpu": cpu_model(),
            "python": platform.python_version(),
        },
        "rows": args.rows,
        "csv_mib": round(csv_path.stat().st_size / 2**20, 1),
        "planted": planted,
        "ingest": {
            "wall_s": round(wall, 2),
            "rows_per_s": round(rows / wall),
            "peak_rss_mib": round(peak / 2**20),
            "cpu_s": round(cpu, 2),
            "ingest_call_s": summary["elapsed_s"],
            "read": summary["read"],
            "accepted": summary["accepted"],
            "duplicates": summary["duplicates"],
            "rejected": summary["rejected"],
            "rejected_by_reason": summary["rejected_by_reason"],
            "partitions": summary["partitions"],
            "phases_s": summary["timings_s"],
        },
        "baseline": {
            "wall_s": round(b_wall, 2),
            "peak_rss_mib": round(b_peak / 2**20),
            "cpu_s": round(b_cpu, 2),
            "rows_written": int(b_text.strip().splitlines()[-1]),
        },
        "ratio": round(wall / b_wall, 2),
        "load_average_1m": [round(load_before, 2), round(load_after, 2)],
        "settings": {"chunk_rows": args.chunk_rows, "duckdb_memory_limit": args.memory_limit},
    }
    identity = summary["read"] == summary["accepted"] + summary["duplicates"] + summary["rejected"]
    result["identity_holds"] = identity
    diffs: list[str] | None = None
    if args.save_outputs or args.compare_with:
        recording = args.save_outputs or out / "outputs"
        save(ws, recording)
        if args.compare_with:
            diffs = compare(args.compare_with, recording)
            result["compare_with"] = {"recording": str(args.compare_with), "identical": not diffs,
                                      "differences": diffs}
    (out / "bench_ingest.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    inside = summary["elapsed_s"]
    print(f"\n{args.rows:,} rows, {result['csv_mib']} MiB CSV, memory limit {args.memory_limit}, chunk {args.chunk_rows:,}")
    print(f"load average      {load_before:.2f} before, {load_after:.2f} after on {os.cpu_count()} cores"
          " (above the core count: other work shared the machine; trust CPU over wall)")
    print(f"bare DuckDB copy  wall {b_wall:7.2f} s  CPU {b_cpu:7.2f} s  peak RSS {b_peak / 2**20:6,.0f} MiB")
    print(f"churnkit ingest   wall {wall:7.2f} s  CPU {cpu:7.2f} s  peak RSS {peak / 2**20:6,.0f} MiB"
          f"  (ingest() itself {inside:.2f} s: {summary['timings_s']}; CLI start {wall - inside:.2f} s)")
    print(f"ratio             wall {wall / b_wall:.2f}x, CPU {cpu / b_cpu:.2f}x (ingest() alone, wall {inside / b_wall:.2f}x)")
    print(f"counts            read {summary['read']:,} = accepted {summary['accepted']:,} + duplicates"
          f" {summary['duplicates']:,} + rejected {summary['rejected']:,}: {'holds' if identity else 'BROKEN'}"
          f" (planted: {planted['duplicates']:,} duplicates, {planted['bad']:,} bad)")
    if diffs is not None:
        state = "IDENTICAL" if not diffs else "DIFFERENT: " + "; ".join(diffs)
        print(f"outputs vs {args.compare_with}: {state} ({describe(recording)})")
    if not identity or diffs:
        raise SystemExit(1)




if __name__ == "__main__":
    main()
