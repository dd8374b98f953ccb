"""Whole-file problems: one-line errors naming file and problem, and nothing half-written."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from churnkit.config import IngestSettings, SourceConfig
from churnkit.errors import ConfigError, InputFileError
from churnkit.events.ingest import ingest
from churnkit.io.workspace import Workspace

HEADER = "user_id,ts,event,amount\n"
GOOD = HEADER + "u1,2024-01-02T10:00:00Z,purchase,12.5\n"
SOURCE = SourceConfig.model_validate(
    {
        "name": "t",
        "fields": {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount"},
    }
)


def run(ws_root: Path, paths, src: SourceConfig = SOURCE, **kw):
    return ingest(
        [Path(p) for p in paths],
        src,
        Workspace(ws_root),
        as_of=dt.datetime(2025, 1, 1, tzinfo=dt.UTC),
        settings=IngestSettings(),
        **kw,
    )


def churnkit(*args: str) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).with_name("churnkit")
    env = {k: v for k, v in os.environ.items() if k != "CHURNKIT_DEBUG"}
    return subprocess.run(
        [str(exe), *args], capture_output=True, text=True, env=env, timeout=300, check=False
    )


def snapshot(root: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(root)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file() and p != Workspace(root).lock_path  # the lock notes who last held it
    }


def test_missing_column_via_cli_is_one_line_and_leaves_workspace_untouched(tmp_path):
    ws = tmp_path / "ws"
    src = tmp_path / "src.yaml"
    src.write_text("name: t\nfields: {user_id: user_id, ts: ts, event: event, amount: amount}\n")
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    first = churnkit(
        "--workspace", str(ws), "ingest", str(good), "--source", str(src), "--as-of", "2024-12-31"
    )
    assert first.returncode == 0, first.stderr
    before = snapshot(ws)
    summary_before = Workspace(ws).summary_path.read_text()

    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,event,price\nu1,2024-01-02,view,1\n")
    proc = churnkit("--workspace", str(ws), "ingest", str(good), str(bad), "--source", str(src))
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert (
        str(bad) in lines[0] and "'amount'" in lines[0] and "user_id, ts, event, price" in lines[0]
    )
    assert "Traceback" not in proc.stderr
    assert snapshot(ws) == before
    assert Workspace(ws).summary_path.read_text() == summary_before
    assert not [p for p in Workspace(ws).data_dir.iterdir() if p.name.startswith(".")]


@pytest.mark.parametrize(
    ("name", "content", "match"),
    [
        ("events.xlsx", b"PK\x03\x04", "unknown format"),
        ("events", b"a,b\n", "unknown format"),
        ("events.parquet", b"not parquet at all", "not a readable Parquet file"),
        ("events.csv", b"", "file is empty"),
        ("events.csv", b"\n\n  \n", "file is empty"),
        (
            "events.csv",
            b"user_id,t\xffs,event,amount\nu1,2024-01-01,view,\n",
            "header (line 1) is unreadable: undecodable bytes for encoding utf-8: byte 0xff at position 10 (set csv.encoding)",
        ),
        ("events.csv", b"user_id,ts,user_id,event,amount\n", "more than once"),
        ("events.json", b'[{"user_id": "u1"}]\n', "JSON array"),
        ("events.csv.gz", b"not gzip", "cannot read"),
    ],
)
def test_whole_file_errors(tmp_path, name, content, match):
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(InputFileError, match=re.escape(match)) as err:
        run(tmp_path / "ws", [p])
    assert str(p) in str(err.value) and "\n" not in str(err.value)
    assert Workspace(tmp_path / "ws").current_data() is None


def test_missing_path_empty_folder_and_no_matching_files(tmp_path):
    with pytest.raises(InputFileError, match="no such file or folder"):
        run(tmp_path / "ws", [tmp_path / "nope.csv"])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(InputFileError, match=r"no files matching pattern '\*'"):
        run(tmp_path / "ws", [empty])
    (empty / "notes.md").write_text("x")
    with pytest.raises(InputFileError, match="notes.md: unknown format .*set `pattern` in the source"):
        run(tmp_path / "ws", [empty])
    with pytest.raises(
        InputFileError, match=r"empty: folder has no files matching pattern '\*.csv'"
    ):
        run(tmp_path / "ws", [empty], SOURCE.model_copy(update={"pattern": "*.csv"}))


def test_later_file_problem_fails_before_anything_is_read(tmp_path):
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    bad = tmp_path / "bad.csv"
    bad.write_text("user_id,ts,event\n")
    with pytest.raises(
        InputFileError, match="missing column 'amount' \\(needed by fields.amount\\)"
    ):
        run(tmp_path / "ws", [good, bad])
    assert Workspace(tmp_path / "ws").current_data() is None


def test_jsonl_key_missing_from_every_object(tmp_path):
    p = tmp_path / "e.jsonl"
    p.write_text('{"uid": "u1", "ts": "2024-01-01", "event": "view"}\n')
    with pytest.raises(InputFileError, match="missing key 'user_id' in every object"):
        run(tmp_path / "ws", [p])


def test_headerless_csv_needs_column_names(tmp_path):
    p = tmp_path / "e.csv"
    p.write_text("u1,2024-01-01,view,\n")
    with pytest.raises(ConfigError, match="csv.columns"):
        run(
            tmp_path / "ws",
            [p],
            SOURCE.model_copy(update={"csv": SOURCE.csv.model_copy(update={"header": False})}),
        )


def test_failure_mid_file_keeps_previous_ingest(tmp_path):
    ws = tmp_path / "ws"
    good = tmp_path / "good.csv"
    good.write_text(GOOD)
    run(ws, [good])
    before = snapshot(ws)
    # a valid header and a truncated gzip stream: the error comes while rows are being read
    data = gzip.compress((HEADER + "u1,2024-01-02,view,\n" * 50_000).encode())
    broken = tmp_path / "broken.csv.gz"
    broken.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="broken.csv.gz"):
        run(ws, [good, broken])
    assert snapshot(ws) == before
    assert json.loads(Workspace(ws).summary_path.read_text())["read"] == 1
    assert not [p for p in Workspace(ws).data_dir.iterdir() if p.name.startswith(".")]
