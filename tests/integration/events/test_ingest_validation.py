"""Rejections with their reasons and exact lines, duplicates, and chunking that changes nothing."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from churnkit.config import IngestSettings, SourceConfig, load_source
from churnkit.events import read_events
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

UTC = dt.UTC
DATA = Path(__file__).resolve().parents[2] / "data"
AS_OF = dt.datetime(2025, 1, 1, tzinfo=UTC)


def run(tmp_path: Path, paths, src: SourceConfig, ws_name: str = "ws", **settings):
    ws = Workspace(tmp_path / ws_name)
    summary = ingest(
        [Path(p) for p in paths], src, ws, as_of=AS_OF, settings=IngestSettings(**settings)
    )
    return summary, ws


def quarantine(ws: Workspace) -> list[dict]:
    return pq.read_table(ws.quarantine_path).to_pylist()


def test_messy_fixture_every_bad_row_quarantined_once_with_its_reason(tmp_path):
    src = load_source(str(DATA / "messy_source.yaml"))
    summary, ws = run(tmp_path, [DATA / "messy_events.csv"], src)

    expected = {
        6: ("malformed_row", "expected 5 fields, found 3"),
        7: ("missing_user_id", "user_id is empty (column 'user_id')"),
        8: ("bad_timestamp", "timestamp '2024-13-01' matches none of ['iso8601']"),
        9: (
            "timestamp_out_of_range",
            "timestamp 1984-12-31T23:00:00Z is before min_ts 1990-01-01T00:00:00Z",
        ),
        10: (
            "timestamp_out_of_range",
            "timestamp 2029-12-31T23:00:00Z is at or after as_of 2025-01-01T00:00:00Z",
        ),
        11: ("missing_event", "event is empty (column 'event')"),
        12: ("unknown_event", "event 'teleport' is not in the vocabulary [purchase, view]"),
        13: ("wrong_type", "amount 'abc' is not a number"),
        14: ("non_finite_amount", "amount 'nan' is not finite"),
        15: (
            "negative_amount",
            "amount -3.0 is negative and the source allows no negative amounts",
        ),
        20: ("non_finite_amount", "amount 'inf' is not finite"),
        21: ("malformed_row", "undecodable bytes for encoding utf-8: byte 0xff at position 25"),
        22: ("malformed_row", "expected 5 fields, found 6"),
        23: ("malformed_row", 'unterminated quoted field (no closing " before end of file)'),
    }
    q = quarantine(ws)
    assert {r["line"]: (r["reason"], r["detail"]) for r in q} == expected
    assert len(q) == len(expected)  # one entry per bad row
    assert all(
        r["table"] == "events" and r["source_file"] == str(DATA / "messy_events.csv") for r in q
    )
    raw = {r["line"]: r["raw"] for r in q}
    assert raw[13] == "u10,2024-01-12,purchase,abc,x" and raw[7] == " ,2024-01-09,view,,x"

    assert summary["read"] == 21 and summary["blank_lines"] == 1
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (6, 1, 14)
    assert summary["read"] == summary["accepted"] + summary["duplicates"] + summary["rejected"]
    assert summary["rejected_by_reason"] == {
        "malformed_row": 4,
        "missing_user_id": 1,
        "bad_timestamp": 1,
        "timestamp_out_of_range": 2,
        "missing_event": 1,
        "unknown_event": 1,
        "wrong_type": 1,
        "non_finite_amount": 2,
        "negative_amount": 1,
    }
    df = read_events(ws)
    got = {
        (
            r.user_id,
            r.ts.isoformat(),
            r.event,
            None if r.amount != r.amount else r.amount,
            r.category,
        )
        for r in df.itertuples()
    }
    assert got == {
        ("u1", "2024-01-05T10:00:00+00:00", "purchase", 12.5, "books"),
        (
            "u2",
            "2024-01-06T08:30:00+00:00",
            "view",
            None,
            "electronics",
        ),  # Berlin 09:30 = 08:30 UTC
        ("u3", "2024-01-07T06:00:00+00:00", "purchase", 5.0, "toys, games"),  # explicit +02:00 kept
        (
            "u13",
            "2024-01-14T23:00:00+00:00",
            "view",
            None,
            "multi\nline",
        ),  # date only: Berlin midnight
        ("u14", "2024-01-15T23:00:00+00:00", "view", 1.5, "padded"),
        ("u18", "2024-01-19T23:00:00+00:00", "view", None, "x"),
    }
    assert summary["users"] == 6
    assert (
        summary["first_ts"] == "2024-01-05T10:00:00Z"
        and summary["last_ts"] == "2024-01-19T23:00:00Z"
    )


def _source(duplicates: str) -> SourceConfig:
    return SourceConfig.model_validate(
        {
            "name": "d",
            "duplicates": duplicates,
            "fields": {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount"},
        }
    )


def test_duplicates_drop_across_files_vs_keep(tmp_path):
    header = "user_id,ts,event,amount,note\n"
    a = tmp_path / "a.csv"
    b = tmp_path / "b.csv"
    a.write_text(
        header + "u1,2024-01-01,view,,x\nu1,2024-01-01,view,,x\nu1,2024-01-01,view,,other\n"
    )
    b.write_text(header + "u1, 2024-01-01 ,view,,x\nu2,2024-01-01,view,,x\n")
    summary, ws = run(tmp_path, [a, b], _source("drop"))
    # identical in all source values (padding aside) -> one kept; a different unmapped column -> not a duplicate
    assert (summary["read"], summary["accepted"], summary["duplicates"]) == (5, 3, 2)
    assert "identical_rows_kept" not in summary
    assert len(read_events(ws)) == 3

    summary, ws = run(tmp_path, [a, b], _source("keep"), ws_name="ws2")
    assert (summary["read"], summary["accepted"], summary["duplicates"]) == (5, 5, 0)
    assert summary["identical_rows_kept"] == 2
    assert len(read_events(ws)) == 5


def test_rejected_rows_are_never_counted_as_duplicates(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text(
        "user_id,ts,event,amount\n,2024-01-01,view,\n,2024-01-01,view,\nu1,2024-01-01,view,\n"
    )
    summary, ws = run(tmp_path, [p], _source("drop"))
    assert (summary["accepted"], summary["duplicates"], summary["rejected"]) == (1, 0, 2)
    assert [r["line"] for r in quarantine(ws)] == [2, 3]


def test_parquet_rejections_carry_row_numbers(tmp_path):
    p = tmp_path / "e.parquet"
    pq.write_table(
        pa.table(
            {
                "user_id": ["a", "b", "c"],
                "ts": ["2024-01-01", "soon", "2024-01-01"],
                "event": ["view", "view", "view"],
                "amount": pa.array([1.0, 2.0, -1.0]),
            }
        ),
        p,
    )
    src = SourceConfig.model_validate(
        {
            "name": "p",
            "allow_negative_amount": False,
            "fields": {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount"},
        }
    )
    _, ws = run(tmp_path, [p], src)
    assert [(r["line"], r["reason"]) for r in quarantine(ws)] == [
        (2, "bad_timestamp"),
        (3, "negative_amount"),
    ]


def test_multiply_amount_and_wrong_type(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text(
        "uid,day,time,kind,qty,price\nu1,2024-01-01,10:00,buy,2,1.25\nu2,2024-01-01,11:00,buy,x,3\n"
    )
    src = SourceConfig.model_validate(
        {
            "name": "m",
            "fields": {
                "user_id": "uid",
                "ts": {"columns": ["day", "time"], "formats": ["%Y-%m-%d %H:%M"]},
                "event": {"column": "kind", "values": {"buy": "purchase"}},
                "amount": {"multiply": ["qty", "price"]},
            },
        }
    )
    _summary, ws = run(tmp_path, [p], src)
    df = read_events(ws)
    assert df["amount"].tolist() == [2.5] and df["event"].tolist() == ["purchase"]
    assert df["ts"].iloc[0].isoformat() == "2024-01-01T10:00:00+00:00"
    (q,) = quarantine(ws)
    assert (q["line"], q["reason"], q["detail"]) == (
        3,
        "wrong_type",
        "amount factor 'qty' 'x' is not a number",
    )


def test_chunk_size_changes_nothing(tmp_path):
    """Blocks of 1,000 lines vs one block: same events, same quarantine, same line numbers."""
    lines = ["user_id,ts,event,amount,note"]
    for i in range(4500):
        if i % 97 == 0:
            lines.append(f'u{i % 50},2024-01-{1 + i % 28:02d},view,,"spans\ntwo lines"')
        elif i % 89 == 0:
            lines.append(f"u{i % 50},2024-02-30,view,,bad date")
        elif i % 83 == 0:
            lines.append("")
        elif i % 79 == 0:
            lines.append(lines[-1] if lines[-1] else f"u{i},2024-01-01,view,,x")
        else:
            lines.append(
                f"u{i % 50},2024-01-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,view,{i % 7},n{i}"
            )
    p = tmp_path / "e.csv"
    p.write_text("\n".join(lines) + "\n")
    src = _source("drop")
    small, ws_small = run(tmp_path, [p], src, "small", chunk_rows=1000)
    big, ws_big = run(tmp_path, [p], src, "big", chunk_rows=100_000)
    for key in (
        "read",
        "accepted",
        "duplicates",
        "rejected",
        "rejected_by_reason",
        "blank_lines",
        "users",
    ):
        assert small[key] == big[key], key
    assert read_events(ws_small).equals(read_events(ws_big))
    assert quarantine(ws_small) == quarantine(ws_big)
    assert small["duplicates"] > 0 and small["rejected"] > 0 and small["blank_lines"] > 0
