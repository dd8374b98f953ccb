"""Loaders end to end: CSV dialects, Parquet, JSON Lines, many files, folders, compression."""

from __future__ import annotations

import datetime as dt
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnkit.config import IngestSettings, SourceConfig
from churnkit.events import read_events
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

UTC = dt.UTC
AS_OF = dt.datetime(2025, 1, 1, tzinfo=UTC)


def source(**over) -> SourceConfig:
    data = {
        "name": "test",
        "fields": {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount"},
    }
    data.update(over)
    return SourceConfig.model_validate(data)


def run(tmp_path: Path, paths, src: SourceConfig, **settings):
    ws = Workspace(tmp_path / "ws")
    summary = ingest(
        [Path(p) for p in paths], src, ws, as_of=AS_OF, settings=IngestSettings(**settings)
    )
    return summary, ws


def rows(ws: Workspace) -> list[tuple]:
    df = read_events(ws)
    return [
        (r.user_id, r.ts.to_pydatetime(), r.event, None if r.amount != r.amount else r.amount)
        for r in df.itertuples()
    ]


def quarantine(ws: Workspace) -> list[dict]:
    return pq.read_table(ws.quarantine_path).to_pylist()


EXPECTED = [
    ("u1", dt.datetime(2024, 1, 2, 10, tzinfo=UTC), "purchase", 12.5),
    ("u1", dt.datetime(2024, 2, 3, tzinfo=UTC), "view", None),
    ("u2", dt.datetime(2024, 1, 5, 8, 30, tzinfo=UTC), "view", None),
]


@pytest.mark.parametrize("delim", [",", ";", "|", "\t", "whitespace"])
def test_csv_delimiters_padding_and_crlf(tmp_path, delim):
    sep = {"whitespace": "   "}.get(delim, delim)
    pad = "" if delim == "whitespace" else "  "
    amount_empty = "" if delim != "whitespace" else None
    lines = [
        sep.join([" user_id", f"ts{pad}", f"{pad}event", "amount "]),
        sep.join(["u1", f"{pad}2024-01-02T10:00:00Z", "purchase", f"{pad}12.5{pad}"]),
        sep.join([f"{pad}u2", "2024-01-05T08:30:00Z", "view", amount_empty])
        if amount_empty is not None
        else None,
        sep.join(["u1", "2024-02-03", f"view{pad}", ""]) if amount_empty is not None else None,
    ]
    if (
        delim == "whitespace"
    ):  # no empty fields in a blank-separated file: amount is a column that is there
        lines[2] = "  u2   2024-01-05T08:30:00Z view  NA"
        lines[3] = "u1\t2024-02-03   view NA  "
    p = tmp_path / "events.csv"
    p.write_bytes(("\r\n".join(lines) + "\r\n").encode())
    fields = {
        "user_id": "user_id",
        "ts": "ts",
        "event": "event",
        "amount": {"column": "amount", "values": {"NA": ""}} if delim == "whitespace" else "amount",
    }
    summary, ws = run(tmp_path, [p], source(csv={"delimiter": delim}, fields=fields))
    assert (summary["read"], summary["accepted"], summary["rejected"]) == (3, 3, 0)
    assert rows(ws) == EXPECTED


def test_quoted_fields_and_multiline_records(tmp_path):
    p = tmp_path / "q.csv"
    p.write_text(
        "user_id,ts,event,amount,category\n"
        'u1,2024-01-02T10:00:00Z,purchase,12.5,"books, used"\n'
        'u1,2024-02-03,view,,"say ""hi"""\n'
        'u2,2024-01-05T08:30:00Z,view,,"two\nlines"\n'
        'u3,2024-13-01,view,,"bad ts"\n'
    )
    summary, ws = run(
        tmp_path,
        [p],
        source(fields={**source().fields.model_dump(exclude_none=True), "category": "category"}),
    )
    assert summary["accepted"] == 3
    cats = read_events(ws).sort_values(["user_id", "ts"])["category"].tolist()
    assert cats == ["books, used", 'say "hi"', "two\nlines"]
    (q,) = quarantine(ws)
    assert q["line"] == 6 and q["reason"] == "bad_timestamp"  # after the 2-line record on lines 4-5


def test_tsv_extension_means_tab_unless_delimiter_is_set(tmp_path):
    p = tmp_path / "e.tsv"
    p.write_text("user_id\tts\tevent\tamount\nu1\t2024-01-02T10:00:00Z\tpurchase\t12.5\n")
    summary, _ = run(tmp_path, [p], source())
    assert summary["accepted"] == 1


def test_headerless_with_column_names_and_header_renamed(tmp_path):
    p = tmp_path / "noheader.txt"
    p.write_text("u1 2024-01-02T10:00:00Z purchase 12.5\n")
    src = source(
        csv={
            "delimiter": "whitespace",
            "header": False,
            "columns": ["user_id", "ts", "event", "amount"],
        }
    )
    summary, ws = run(tmp_path, [p], src)
    assert summary["accepted"] == 1 and rows(ws)[0] == EXPECTED[0]
    p2 = tmp_path / "renamed.csv"
    p2.write_text("a,b,c,d\nu1,2024-01-02T10:00:00Z,purchase,12.5\n")
    summary, ws = run(tmp_path, [p2], source(csv={"columns": ["user_id", "ts", "event", "amount"]}))
    assert summary["accepted"] == 1


def test_parquet_typed_columns_row_numbers_and_json_raw(tmp_path):
    p = tmp_path / "e.parquet"
    table = pa.table(
        {
            "user_id": pa.array([1, 2, None, 4], pa.int64()),
            "ts": pa.array(
                [
                    dt.datetime(2024, 1, 2, 10),
                    dt.datetime(2024, 1, 5, 8, 30),
                    dt.datetime(2024, 1, 6),
                    dt.datetime(2024, 1, 7),
                ],
                pa.timestamp("ms", tz="UTC"),
            ),
            "event": ["purchase", "view", "view", "purchase"],
            "amount": pa.array([12.5, None, None, float("nan")], pa.float64()),
            "extra": [{"a": 1}, {"a": 2}, {"a": 3}, {"a": 4}],
        }
    )
    pq.write_table(table, p, row_group_size=2)
    summary, ws = run(tmp_path, [p], source())
    assert (summary["read"], summary["accepted"], summary["rejected"]) == (4, 2, 2)
    assert [r[:2] for r in rows(ws)] == [
        ("1", dt.datetime(2024, 1, 2, 10, tzinfo=UTC)),
        ("2", dt.datetime(2024, 1, 5, 8, 30, tzinfo=UTC)),
    ]
    q = quarantine(ws)
    assert [(r["line"], r["reason"]) for r in q] == [
        (3, "missing_user_id"),
        (4, "non_finite_amount"),
    ]
    raw = json.loads(q[0]["raw"])
    assert raw["user_id"] is None and raw["event"] == "view" and raw["extra"] == {"a": 3}


def test_jsonl_values_bad_lines_and_blank_lines(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text(
        '{"user_id": "u1", "ts": "2024-01-02T10:00:00Z", "event": "purchase", "amount": 12.5}\n'
        "\n"
        '{"user_id": 2, "ts": 1704443400, "event": "view"}\n'
        "{not json}\n"
        '["a", "list"]\n'
        '{"user_id": "u3", "ts": "2024-01-06", "event": "view", "amount": "12,5"}\n'
    )
    src = source(
        fields={
            "user_id": "user_id",
            "ts": {"column": "ts", "formats": ["iso8601", "unix_s"]},
            "event": "event",
            "amount": "amount",
        }
    )
    summary, ws = run(tmp_path, [p], src)
    assert (summary["read"], summary["accepted"], summary["rejected"], summary["blank_lines"]) == (
        5,
        2,
        3,
        1,
    )
    assert rows(ws)[0] == (
        "2",
        dt.datetime(2024, 1, 5, 8, 30, tzinfo=UTC),
        "view",
        None,
    )  # "2" < "u1"
    q = quarantine(ws)
    assert [(r["line"], r["reason"]) for r in q] == [
        (4, "malformed_row"),
        (5, "malformed_row"),
        (6, "wrong_type"),
    ]
    assert q[0]["detail"].startswith("invalid JSON") and "not an object" in q[1]["detail"]
    assert q[2]["raw"].startswith('{"user_id": "u3"')


def test_many_files_folder_pattern_and_mixed_formats(tmp_path):
    d = tmp_path / "logs"
    (d / "sub").mkdir(parents=True)
    header = "user_id,ts,event,amount\n"
    (d / "b.csv").write_text(header + "u2,2024-01-05T08:30:00Z,view,\n")
    (d / "a.csv").write_text(header + "u1,2024-01-02T10:00:00Z,purchase,12.5\n")
    (d / ".hidden.csv").write_text(header + "zz,2024-01-01,view,\n")
    (d / "notes.md").write_text("not data\n")
    (d / "sub" / "c.csv").write_text(header + "u9,2024-01-01,view,\n")
    extra = tmp_path / "more.jsonl"
    extra.write_text('{"user_id": "u1", "ts": "2024-02-03", "event": "view"}\n')
    summary, ws = run(tmp_path, [d, extra], source(pattern="*.csv"))
    assert [Path(f["path"]).name for f in summary["files"]] == ["a.csv", "b.csv", "more.jsonl"]
    assert [f["read"] for f in summary["files"]] == [1, 1, 1]
    assert rows(ws) == EXPECTED
    summary, _ = run(tmp_path, [d], source(pattern="**/*.csv"))
    assert [Path(f["path"]).name for f in summary["files"]] == ["a.csv", "b.csv", "c.csv"]


def test_gzip_and_latin1(tmp_path):
    p = tmp_path / "e.csv.gz"
    p.write_bytes(
        gzip.compress(b"user_id,ts,event,amount\nu1,2024-01-02T10:00:00Z,purchase,12.5\n")
    )
    summary, _ = run(tmp_path, [p], source())
    assert summary["accepted"] == 1
    p = tmp_path / "l1.csv"
    p.write_bytes(
        "user_id,ts,event,amount\nJosé,2024-01-02T10:00:00Z,purchase,12.5\n".encode("latin-1")
    )
    summary, ws = run(tmp_path, [p], source(csv={"encoding": "latin-1"}))
    assert rows(ws)[0][0] == "José"
