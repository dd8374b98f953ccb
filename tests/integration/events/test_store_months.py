"""The month-at-a-time dedup and sort gives what one global dedup and sort would.

Staged parts each hold rows of several months; duplicates sit in different parts (the first by
sequence is kept); every month file must hold exactly its rows sorted by (user, time, sequence),
and the keys file the kept rows' hashes in that same order.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnkit.contracts import EVENT_ARROW_SCHEMA
from churnkit.events import store
from churnkit.events.store import StagedEvents, connect, finalize_events, sequence

UTC = dt.UTC


def _part(rows: list[tuple[str, dt.datetime, str]]) -> tuple[pa.Table, pa.Array]:
    n = len(rows)
    cols = {name: pa.nulls(n, field.type) for name, field in zip(EVENT_ARROW_SCHEMA.names, EVENT_ARROW_SCHEMA)}
    cols["user_id"] = pa.array([r[0] for r in rows], pa.string())
    cols["ts"] = pa.array([r[1] for r in rows], pa.timestamp("us", tz="UTC"))
    cols["event"] = pa.array([r[2] for r in rows], pa.string())
    table = pa.table(cols, schema=EVENT_ARROW_SCHEMA)
    keys = pa.array([f"{u}|{t.isoformat()}|{e}" for u, t, e in rows], pa.string())
    return table, keys


@pytest.mark.parametrize("months_in", ["arrow", "duckdb", "both"])
def test_month_by_month_equals_one_global_dedup_and_sort(tmp_path, monkeypatch, months_in):
    if months_in == "duckdb":  # every month over the in-memory limit: DuckDB sorts them all
        monkeypatch.setattr(store, "MAX_ROWS", 0)
    rng = np.random.default_rng(3)
    users = [f"u{i}" for i in range(7)]
    start = dt.datetime(2024, 1, 1, tzinfo=UTC)
    parts = []
    for _ in range(3):
        rows = [(users[rng.integers(7)], start + dt.timedelta(hours=int(rng.integers(0, 24 * 120))),
                 "view" if rng.random() < 0.5 else "session") for _ in range(300)]
        parts.append(rows)
    parts[2][:40] = parts[0][100:140]  # duplicates of earlier rows, in a later part
    parts[1][10] = parts[1][5]  # and one within a part

    con = connect(tmp_path / "tmp", "256MB")
    staged = StagedEvents(tmp_path / "staged", con)
    line0 = 1
    for rows in parts:
        table, keys = _part(rows)
        staged.add(table, sequence(0, np.arange(line0, line0 + len(rows))), keys)
        line0 += len(rows)
    if months_in == "both":  # small months sorted ahead in Arrow, large ones by DuckDB, in turn
        sizes = pd.Series([t.strftime("%Y-%m") for rows in parts for _, t, _ in rows]).value_counts().tolist()
        monkeypatch.setattr(store, "MAX_ROWS", (min(sizes) + max(sizes)) // 2)
        assert min(sizes) <= store.MAX_ROWS < max(sizes)
    out = tmp_path / "events"
    stats = finalize_events(con, staged, out, drop_duplicates=True, partition_by="month",
                            row_group_rows=100_000, keys_path=tmp_path / "keys.parquet")
    con.close()

    everything = pd.DataFrame([r for rows in parts for r in rows], columns=["user_id", "ts", "event"])
    everything["seq"] = np.arange(1, len(everything) + 1)
    kept = everything.drop_duplicates(["user_id", "ts", "event"], keep="first")
    assert (stats.valid, stats.written, stats.duplicates) == (900, len(kept), 900 - len(kept)) and stats.duplicates >= 41
    kept = kept.assign(month=kept.ts.dt.strftime("%Y-%m")).sort_values(["month", "user_id", "ts", "seq"])
    months = sorted(p.parent.name for p in out.glob("month=*/part-0.parquet"))
    assert months == [f"month={m}" for m in sorted(kept.month.unique())]
    for name in months:
        got = pq.read_table(out / name / "part-0.parquet").to_pandas()
        want = kept[kept.month == name.removeprefix("month=")]
        assert got.user_id.tolist() == want.user_id.tolist()
        assert got.ts.tolist() == want.ts.tolist() and got.event.tolist() == want.event.tolist()
    assert pq.read_metadata(tmp_path / "keys.parquet").num_rows == len(kept)
