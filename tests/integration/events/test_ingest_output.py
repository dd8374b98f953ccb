"""What lands in the workspace: layout, schema, order, readers, replacement, progress."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from churnkit.config import IngestSettings, SourceConfig
from churnkit.contracts import EVENT_ARROW_SCHEMA as EVENT_SCHEMA
from churnkit.events import events_glob, events_sql, read_events
from churnkit.events.ingest import ingest
from churnkit.events.schema import QUARANTINE_SCHEMA
from churnkit.io.workspace import Workspace

UTC = dt.UTC
AS_OF = dt.datetime(2025, 1, 1, tzinfo=UTC)
SOURCE = SourceConfig.model_validate(
    {
        "name": "o",
        "fields": {
            "user_id": "user_id",
            "ts": "ts",
            "event": "event",
            "amount": "amount",
            "channel": "channel",
        },
    }
)


def log(path: Path, months: list[int]) -> Path:
    lines = ["user_id,ts,event,amount,channel"]
    for m in months:
        for u in ("u2", "u10", "u1"):
            for day in (20, 3):
                lines.append(f"{u},2024-{m:02d}-{day:02d}T12:00:00Z,view,,web")
    path.write_text("\n".join(lines) + "\n")
    return path


def run(ws: Workspace, paths, **settings):
    return ingest(paths, SOURCE, ws, as_of=AS_OF, settings=IngestSettings(**settings))


def test_month_partitions_schema_and_sorted_files(tmp_path):
    ws = Workspace(tmp_path / "ws")
    s = run(ws, [log(tmp_path / "e.csv", [3, 1, 2])])
    files = sorted(
        p.relative_to(ws.events_dir).as_posix() for p in ws.events_dir.rglob("*.parquet")
    )
    assert files == [
        "month=2024-01/part-0.parquet",
        "month=2024-02/part-0.parquet",
        "month=2024-03/part-0.parquet",
    ]
    assert s["partitions"] == 3
    for f in files:
        t = pq.read_table(ws.events_dir / f)
        assert t.schema.equals(EVENT_SCHEMA, check_metadata=False)
        keys = list(zip(t.column("user_id").to_pylist(), t.column("ts").to_pylist()))
        assert keys == sorted(keys) and len(keys) == 6
    assert pq.read_table(ws.events_dir / files[0]).column("channel").to_pylist() == ["web"] * 6
    assert (
        pq.read_table(ws.events_dir / files[0]).column("category").null_count == 6
    )  # unmapped -> null


def test_partition_none_is_one_file(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run(ws, [log(tmp_path / "e.csv", [3, 1])], partition_by="none")
    assert [p.name for p in ws.events_dir.iterdir()] == ["part-0.parquet"]
    assert len(read_events(ws)) == 12


def test_readers_agree(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run(ws, [log(tmp_path / "e.csv", [2, 1])])
    df = read_events(ws)
    assert list(df.columns) == list(EVENT_SCHEMA.names)
    assert str(df["ts"].dtype) == "datetime64[us, UTC]"
    assert list(zip(df.user_id, df.ts)) == sorted(zip(df.user_id, df.ts))
    con = duckdb.connect()
    n, months = con.execute(
        f"SELECT count(*), count(DISTINCT month) FROM {events_sql(ws)}"
    ).fetchall()[0]
    assert (n, months) == (12, 2)
    assert events_glob(ws).endswith("events/**/*.parquet")
    assert (
        con.execute(f"SELECT count(*) FROM read_parquet('{events_glob(ws)}')").fetchall()[0][0]
        == 12
    )


def test_reingest_replaces_everything_and_summary_matches_file(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run(ws, [log(tmp_path / "a.csv", [1, 2, 3])])
    s = run(ws, [log(tmp_path / "b.csv", [5])])
    assert sorted(p.name for p in ws.events_dir.iterdir()) == ["month=2024-05"]  # no stale months
    assert json.loads(ws.summary_path.read_text()) == s
    assert not [p for p in ws.data_dir.iterdir() if p.name.startswith(".")]


def test_empty_quarantine_is_still_written_and_readable(tmp_path):
    ws = Workspace(tmp_path / "ws")
    s = run(ws, [log(tmp_path / "e.csv", [1])])
    q = pq.read_table(ws.quarantine_path)
    assert s["rejected"] == 0 and q.num_rows == 0 and q.schema.equals(QUARANTINE_SCHEMA)


def test_all_rows_rejected_gives_empty_events(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("user_id,ts,event,amount,channel\nu1,never,view,,web\n")
    ws = Workspace(tmp_path / "ws")
    s = run(ws, [p])
    assert (s["accepted"], s["users"], s["first_ts"], s["last_ts"]) == (0, 0, None, None)
    assert read_events(ws).empty and list(read_events(ws).columns) == list(EVENT_SCHEMA.names)


def test_progress_reports_bytes_and_finishes(tmp_path):
    calls = []
    p = log(tmp_path / "e.csv", [1, 2])
    ingest(
        [p],
        SOURCE,
        Workspace(tmp_path / "ws"),
        as_of=AS_OF,
        settings=IngestSettings(),
        progress=lambda done, total, note: calls.append((done, total, note)),
    )
    assert calls and all(total == calls[0][1] for _, total, _ in calls)
    dones = [d for d, _, _ in calls]
    assert dones == sorted(dones) and dones[-1] == calls[0][1]
    assert any("e.csv" in (note or "") for _, _, note in calls)


def test_timestamps_are_utc_microseconds_in_parquet(tmp_path):
    ws = Workspace(tmp_path / "ws")
    run(ws, [log(tmp_path / "e.csv", [1])])
    f = next(ws.events_dir.rglob("*.parquet"))
    assert pq.read_schema(f).field("ts").type == pa.timestamp("us", tz="UTC")
