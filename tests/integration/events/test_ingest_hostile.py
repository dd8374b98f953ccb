"""Inputs that used to crash ingest ("internal error", exit 2): each is now a one-line error
for the file or a quarantined row with its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnkit.config import IngestSettings, SourceConfig
from churnkit.contracts import MAX_TEXT_CHARS
from churnkit.errors import InputFileError
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

FIELDS = {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount", "category": "category"}
SOURCE = SourceConfig.model_validate({"name": "h", "fields": FIELDS})


def run(tmp_path: Path, path: Path) -> dict:
    return ingest([path], SOURCE, Workspace(tmp_path / "ws"), as_of=None, settings=IngestSettings())


def quarantined(tmp_path: Path) -> list[dict]:
    return pq.read_table(Workspace(tmp_path / "ws").quarantine_path).to_pylist()


def cli(tmp_path: Path, path: Path) -> subprocess.CompletedProcess:
    src = tmp_path / "h.yaml"
    src.write_text(json.dumps({"name": "h", "fields": FIELDS}))
    exe = str(Path(sys.executable).with_name("churnkit"))
    return subprocess.run([exe, "--workspace", str(tmp_path / "ws"), "ingest", str(path), "--source", str(src)],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize("sep", [",", ";"])
def test_a_header_longer_than_the_field_limit_is_one_line(tmp_path, sep):
    p = tmp_path / "wide.csv"
    p.write_text(sep.join(["user_id", "ts", "event", "amount", "category"]) + sep + "x" * 200_000)  # no newline
    proc = cli(tmp_path, p)
    assert proc.returncode == 1, proc.stderr
    line = proc.stderr.strip()
    assert "\n" not in line and "internal error" not in line
    assert "wide.csv: header (line 1) is unreadable" in line and "131072" in line


@pytest.mark.parametrize(("formats", "ts", "reason"), [
    (["iso8601"], -1, "bad_timestamp"),  # read as the year -1 once, then failed to describe
    (["iso8601"], -(2**63), "bad_timestamp"),
    (["unix_s"], -1, "timestamp_out_of_range"),
    (["unix_s"], 2**63 - 1, "bad_timestamp"),
    (["unix_ms"], -(2**63), "bad_timestamp"),
    (["unix_ms"], 253_402_300_800_000, "bad_timestamp"),  # year 10000
])
def test_parquet_integer_timestamps_far_outside_the_calendar_are_quarantined(tmp_path, formats, ts, reason):
    p = tmp_path / "ints.parquet"
    good = 1_704_067_200 * (1000 if formats == ["unix_ms"] else 1)
    pq.write_table(pa.table({"user_id": ["u1", "u2"], "ts": pa.array([ts, good], pa.int64()),
                             "event": ["view", "view"], "amount": [None, None], "category": ["a", "b"]}), p)
    ts_field = {"column": "ts", "formats": formats}
    src = SourceConfig.model_validate({"name": "h", "fields": {**FIELDS, "ts": ts_field}})
    s = ingest([p], src, Workspace(tmp_path / "ws"), as_of=None, settings=IngestSettings())
    expected = (1, 1) if formats != ["iso8601"] else (0, 2)  # integers are not ISO 8601 text
    assert (s["accepted"], s["rejected"]) == expected
    row = quarantined(tmp_path)[0]
    assert row["reason"] == reason and row["line"] == 1
    assert row["detail"] and "\n" not in row["detail"]


@pytest.mark.parametrize(
    ("column", "values"),
    [
        ("ts", pa.array([{"a": 1}], pa.struct([("a", pa.int64())]))),
        ("ts", pa.array([["2024-01-01"]], pa.list_(pa.string()))),
        ("user_id", pa.array([{"id": "u1"}], pa.struct([("id", pa.string())]))),
        ("event", pa.array([["view"]], pa.list_(pa.string()))),
        ("amount", pa.array([[1.0]], pa.list_(pa.float64()))),
        ("category", pa.array([[("k", "v")]], pa.map_(pa.string(), pa.string()))),
    ],
)
def test_a_nested_parquet_column_for_an_event_field_is_a_file_error(tmp_path, column, values):
    cols = {"user_id": pa.array(["u1"]), "ts": pa.array(["2024-01-01T00:00:00Z"]), "event": pa.array(["view"]),
            "amount": pa.array([None], pa.float64()), "category": pa.array(["a"])}
    cols[column] = values
    p = tmp_path / "nested.parquet"
    pq.write_table(pa.table(cols), p)
    with pytest.raises(InputFileError) as err:
        run(tmp_path, p)
    message = str(err.value)
    kind = str(values.type).split("<")[0]
    assert f"column '{column}'" in message and f"has type {kind}<" in message and "\n" not in message
    assert Workspace(tmp_path / "ws").current_data() is None


def test_nested_json_values_are_quarantined_not_crashed_on(tmp_path):
    p = tmp_path / "e.jsonl"
    rows = [{"user_id": "u1", "ts": {"a": 1}, "event": "view"},
            {"user_id": "u2", "ts": ["2024-01-01"], "event": "view"},
            {"user_id": "u3", "ts": "2024-01-01T00:00:00Z", "event": "view"}]
    p.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    s = run(tmp_path, p)
    assert (s["accepted"], s["rejected"]) == (1, 2)
    assert {r["reason"] for r in quarantined(tmp_path)} == {"bad_timestamp"}


def test_text_fields_have_one_length_limit(tmp_path):
    p = tmp_path / "long.csv"
    ok = "v" * MAX_TEXT_CHARS
    p.write_text(
        "user_id,ts,event,amount,category\n"
        f"{'u' * 1_000_001},2024-01-01T00:00:00Z,view,,\n"
        f"u2,2024-01-01T00:00:00Z,{'e' * (MAX_TEXT_CHARS + 1)},,\n"
        f"u3,2024-01-01T00:00:00Z,view,,{'c' * (MAX_TEXT_CHARS + 1)}\n"
        f"{ok},2024-01-01T00:00:00Z,view,,{ok}\n"
    )
    s = run(tmp_path, p)
    assert (s["accepted"], s["rejected"]) == (1, 3)
    rows = quarantined(tmp_path)
    assert [r["reason"] for r in rows] == ["text_too_long"] * 3
    assert rows[0]["detail"] == f"user_id has 1,000,001 characters; the limit is {MAX_TEXT_CHARS}"
    assert rows[1]["detail"].startswith("event has") and rows[2]["detail"].startswith("category has")
