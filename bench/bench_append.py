"""Daily incremental ingest vs a full rebuild: what one more day's file costs.

Writes ``--days`` daily CSV logs (``--rows`` rows each, a few lines re-sent from the day
before), ingests all of them with ``--mode replace`` (the baseline: what a team without
append would rerun every day), then appends one more day to that store, and prints both
wall times, their ratio, and the check that both paths store the same rows.

    .venv/bin/python bench/bench_append.py --days 180 --rows 20000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import time
from pathlib import Path

import numpy as np
from machine import cpu_model  # bench/machine.py (the script's own folder is on sys.path)

from churnkit.config import IngestSettings, SourceConfig
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

HERE = Path(__file__).resolve().parent
SOURCE = SourceConfig.model_validate(
    {"name": "bench_daily", "fields": {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount"}}
)
START = dt.date(2024, 1, 1)


def write_day(folder: Path, day: int, rows: int, rng: np.random.Generator, previous: list[str]) -> tuple[Path, list[str]]:
    date = START + dt.timedelta(days=day)
    users = rng.integers(0, 50_000, rows)
    seconds = rng.integers(0, 86_400, rows)
    purchase = rng.random(rows) < 0.1
    lines = [
        f"u{u},{date.isoformat()}T{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}Z,"
        f"{'purchase' if p else 'view'},{f'{(u % 90) + 0.99:.2f}' if p else ''}"
        for u, s, p in zip(users.tolist(), seconds.tolist(), purchase.tolist(), strict=True)
    ]
    lines += previous[: rows // 100]  # an export that overlaps the day before
    path = folder / f"{date.isoformat()}.csv"
    path.write_text("user_id,ts,event,amount\n" + "\n".join(lines) + "\n")
    return path, lines[-(rows // 100):]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=180)
    ap.add_argument("--rows", type=int, default=20_000)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "append")
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    logs = args.out / "logs"
    logs.mkdir(parents=True)
    rng = np.random.default_rng(1)
    files, prev = [], []
    for d in range(args.days + 1):
        path, prev = write_day(logs, d, args.rows, rng, prev)
        files.append(path)
    as_of = dt.datetime.combine(START + dt.timedelta(days=args.days + 1), dt.time(), dt.UTC)
    settings = IngestSettings()

    store = Workspace(args.out / "daily")
    t = time.perf_counter()
    ingest(files[:-1], SOURCE, store, as_of=as_of, settings=settings, mode="replace")
    history_s = time.perf_counter() - t
    t = time.perf_counter()
    appended = ingest(files[-1:], SOURCE, store, as_of=as_of, settings=settings, mode="append")
    append_s = time.perf_counter() - t

    full = Workspace(args.out / "full")
    t = time.perf_counter()
    rebuilt = ingest(files, SOURCE, full, as_of=as_of, settings=settings, mode="replace")
    rebuild_s = time.perf_counter() - t
    same = appended["total"]["events"] == rebuilt["accepted"] and appended["users"] == rebuilt["users"]

    result = {
        "date": dt.date.today().isoformat(), "machine": cpu_model(), "days": args.days, "rows_per_day": args.rows,
        "stored_events": appended["total"]["events"], "history_replace_s": round(history_s, 2),
        "append_one_day_s": round(append_s, 2), "rebuild_all_s": round(rebuild_s, 2),
        "append_over_rebuild": round(append_s / rebuild_s, 4), "duplicates_of_stored": appended["duplicates_of_stored"],
        "same_store": same,
    }
    (args.out / "bench_append.json").write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
