"""Incremental ingest: a team that ingests each day's file keeps its history.

The reference is the full rebuild: appending files one by one must store exactly what one
replace of all of them stores (same rows, same order, same duplicates dropped), with a
reconciled summary per run and a running total; months a run does not touch are linked,
not rewritten; a file stored before, a changed duplicates policy or partitioning and an
earlier as-of are refused in one line.
"""

from __future__ import annotations

import datetime as dt
import json
import random
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from churnkit.config import IngestSettings, SourceConfig
from churnkit.errors import ConfigError, InputFileError
from churnkit.events import read_events
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

AS_OF = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
FIELDS = {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount"}
SOURCE = SourceConfig.model_validate({"name": "daily", "fields": FIELDS})
KEEP = SourceConfig.model_validate({"name": "daily_keep", "fields": FIELDS, "duplicates": "keep"})
HEADER = "user_id,ts,event,amount\n"


def daily_files(folder: Path, seed: int, days: int = 6) -> list[Path]:
    """One file per day; some lines repeat within a day, some again on a later day (a
    re-sent export), some are invalid."""
    rng = random.Random(seed)
    folder.mkdir(parents=True, exist_ok=True)
    sent: list[str] = []
    files = []
    for d in range(days):
        day = dt.date(2024, 1, 28) + dt.timedelta(days=d * 3)  # crosses month boundaries
        lines = []
        for _ in range(rng.randint(20, 60)):
            user = f"u{rng.randint(1, 15)}"
            ts = f"{day.isoformat()}T{rng.randint(0, 23):02d}:{rng.choice([0, 30]):02d}:00Z"
            if rng.random() < 0.3:
                lines.append(f"{user},{ts},purchase,{rng.randint(1, 9)}.50")
            else:
                lines.append(f"{user},{ts},view,")
        lines += rng.sample(lines, k=3)  # repeated within the day
        if sent:
            lines += rng.sample(sent, k=min(4, len(sent)))  # re-sent from earlier days
        lines.append(f"u1,{day.isoformat()}T99:00:00Z,view,")  # invalid
        rng.shuffle(lines)
        sent += lines
        path = folder / f"day{d}.csv"
        path.write_text(HEADER + "\n".join(lines) + "\n")
        files.append(path)
    return files


def run(ws: Workspace, paths: list[Path], source: SourceConfig = SOURCE, mode: str = "append",
        as_of: dt.datetime = AS_OF, **settings) -> dict:
    return ingest(paths, source, ws, as_of=as_of, settings=IngestSettings(**settings), mode=mode)


def reconciled(ws: Workspace, s: dict) -> None:
    assert s["read"] == s["accepted"] + s["duplicates"] + s["rejected"]
    t = s["total"]
    assert t["read"] == t["accepted"] + t["duplicates"] + t["rejected"]
    assert t["accepted"] == t["events"] == sum(pq.read_metadata(p).num_rows for p in ws.events_dir.rglob("*.parquet"))
    assert t["rejected"] == t["quarantined"] == pq.read_metadata(ws.quarantine_path).num_rows
    assert t["runs"] == len(s["runs"]) and json.loads(ws.summary_path.read_text()) == s


@pytest.mark.parametrize(("source", "partition_by"), [(SOURCE, "month"), (KEEP, "month"), (SOURCE, "none")])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_appending_day_by_day_stores_what_one_rebuild_stores(tmp_path, seed, source, partition_by):
    files = daily_files(tmp_path / "logs", seed)
    daily, full = Workspace(tmp_path / "daily"), Workspace(tmp_path / "full")
    for i, f in enumerate(files):
        s = run(daily, [f], source, mode="replace" if i == 0 else "append", partition_by=partition_by)
        reconciled(daily, s)
        assert s["mode"] == ("replace" if i == 0 else "append") and s["total"]["runs"] == i + 1
        if source.duplicates == "drop" and i > 0:
            assert s["duplicates_of_stored"] > 0  # the re-sent lines
    rebuilt = run(full, files, source, mode="replace", partition_by=partition_by)
    a, b = read_events(daily), read_events(full)
    pd.testing.assert_frame_equal(a, b)
    assert s["total"]["events"] == rebuilt["accepted"] and s["total"]["rejected"] == rebuilt["rejected"]
    assert s["total"]["duplicates"] == rebuilt["duplicates"]
    assert (s["users"], s["first_ts"], s["last_ts"]) == (rebuilt["users"], rebuilt["first_ts"], rebuilt["last_ts"])
    # every file, in the same order, sorted the same way (the stored rows first on ties)
    for f_daily in daily.events_dir.rglob("*.parquet"):
        f_full = full.events_dir / f_daily.relative_to(daily.events_dir)
        assert pq.read_table(f_daily).equals(pq.read_table(f_full))


def test_months_a_run_does_not_touch_are_linked_not_rewritten(tmp_path):
    ws = Workspace(tmp_path / "ws")
    jan, mar = tmp_path / "jan.csv", tmp_path / "mar.csv"
    jan.write_text(HEADER + "u1,2024-01-05T00:00:00Z,view,\nu2,2024-02-05T00:00:00Z,view,\n")
    mar.write_text(HEADER + "u1,2024-03-05T00:00:00Z,view,\n")
    run(ws, [jan], mode="replace")
    before = {p.relative_to(ws.events_dir): p.stat().st_ino for p in ws.events_dir.rglob("*.parquet")}
    run(ws, [mar])
    after = {p.relative_to(ws.events_dir): p.stat().st_ino for p in ws.events_dir.rglob("*.parquet")}
    assert {str(k) for k in after} == {"month=2024-01/part-0.parquet", "month=2024-02/part-0.parquet",
                                       "month=2024-03/part-0.parquet"}
    assert all(after[k] == ino for k, ino in before.items())  # the same files, shared by both versions


def test_append_refuses_what_would_corrupt_the_store(tmp_path):
    ws = Workspace(tmp_path / "ws")
    files = daily_files(tmp_path / "logs", 7, days=3)
    run(ws, [files[0]], mode="replace")
    run(ws, [files[1]])
    current = ws.current_data()
    copy = tmp_path / "copy.csv"
    copy.write_bytes(files[1].read_bytes())
    with pytest.raises(InputFileError, match=r"copy.csv: already ingested at .* \(as .*day1.csv\); leave it out"):
        run(ws, [files[2], copy])
    with pytest.raises(ConfigError, match="ingested with duplicates_policy 'drop', this run has 'keep'"):
        run(ws, [files[2]], KEEP)
    with pytest.raises(ConfigError, match="ingested with partition_by 'month', this run has 'none'"):
        run(ws, [files[2]], partition_by="none")
    with pytest.raises(ConfigError, match="cannot append with as-of 2024-12-01T00:00:00Z"):
        run(ws, [files[2]], as_of=dt.datetime(2024, 12, 1, tzinfo=dt.UTC))
    with pytest.raises(ConfigError, match="unknown ingest mode 'merge'"):
        run(ws, [files[2]], mode="merge")
    assert ws.current_data() == current  # nothing committed by any of these
    s = run(ws, [files[2]])
    assert s["total"]["runs"] == 3 and [r["mode"] for r in s["runs"]] == ["replace", "append", "append"]


def test_first_append_starts_the_store_and_the_users_table_is_kept_until_replaced(tmp_path):
    ws = Workspace(tmp_path / "ws")
    users = SourceConfig.model_validate({"name": "u", "fields": FIELDS, "users": {
        "path": "users.csv", "user_id": "user_id", "signup_ts": "signup", "attributes": {"plan": "plan"}}})
    day1, day2 = tmp_path / "d1", tmp_path / "d2"
    for folder, plans in ((day1, "free"), (day2, "pro")):
        folder.mkdir()
        (folder / "users.csv").write_text(f"user_id,signup,plan\nu1,2023-12-01,{plans}\nu2,2023-12-02,{plans}\n")
    (day1 / "events.csv").write_text(HEADER + "u1,2024-01-05T00:00:00Z,view,\n")
    (day2 / "events.csv").write_text(HEADER + "u2,2024-01-06T00:00:00Z,view,\n")
    s1 = run(ws, [day1 / "events.csv"], users)  # append into an empty workspace
    assert s1["total"]["runs"] == 1 and s1["users_table"]["users_without_events"] == 1
    s2 = run(ws, [day2 / "events.csv"], SOURCE)  # no users table this time: the stored one stays
    assert pq.read_table(ws.users_path).column("plan").to_pylist() == ["free", "free"]
    assert s2["users_table"]["carried_from"] == s1["runs"][0]["at"]
    s3 = run(ws, [day2 / "events.csv"], users, mode="replace")  # a new one replaces it
    assert pq.read_table(ws.users_path).column("plan").to_pylist() == ["pro", "pro"]
    assert s3["total"] == {"read": 1, "accepted": 1, "duplicates": 0, "rejected": 0, "runs": 1, "events": 1,
                           "users": 1, "quarantined": 0}


def test_append_refuses_a_store_without_its_record(tmp_path):
    ws = Workspace(tmp_path / "ws")
    f = tmp_path / "e.csv"
    f.write_text(HEADER + "u1,2024-01-05T00:00:00Z,view,\n")
    run(ws, [f], mode="replace")
    summary = json.loads(ws.summary_path.read_text())
    del summary["runs"]  # as an ingest by an older churnkit wrote it
    ws.summary_path.write_text(json.dumps(summary))
    g = tmp_path / "g.csv"
    g.write_text(HEADER + "u1,2024-01-06T00:00:00Z,view,\n")
    with pytest.raises(ConfigError, match="older churnkit .* run ingest --mode replace once, then append"):
        run(ws, [g])


def test_cli_mode_is_explicit_and_reports_the_running_total(tmp_path):
    files = daily_files(tmp_path / "logs", 5, days=2)
    src = tmp_path / "src.yaml"
    src.write_text(json.dumps({"name": "daily", "fields": FIELDS}))
    exe = str(Path(sys.executable).with_name("churnkit"))

    def cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([exe, "--workspace", str(tmp_path / "ws"), "ingest", *args, "--source", str(src),
                               "--as-of", "2025-01-01"], capture_output=True, text=True, check=False)

    first = cli(str(files[0]))
    assert first.returncode == 0 and first.stdout.startswith("replace: read "), first.stderr
    second = cli(str(files[1]), "--mode", "append")
    assert second.returncode == 0, second.stderr
    assert second.stdout.startswith("append: read ") and "already stored" in second.stdout
    assert "events from 2 ingests" in second.stdout
    again = cli(str(files[1]), "--mode", "append")
    assert again.returncode == 1 and len(again.stderr.strip().splitlines()) == 1 and "already ingested" in again.stderr
    bad = cli(str(files[1]), "--mode", "merge")
    assert bad.returncode != 0 and "merge" in bad.stderr
