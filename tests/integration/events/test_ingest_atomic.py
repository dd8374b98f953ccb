"""Ingest under an unlucky operator: two at once, and kill -9 at any moment.

One writer holds the workspace (a second fails at once, naming the holder); a new ingest
commits with one atomic pointer switch, so a reader sees the old data or the new, complete,
never a mix; what a killed run leaves is cleaned by the next.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from churnkit.config import IngestSettings, SourceConfig
from churnkit.errors import ChurnkitError
from churnkit.events.ingest import ingest
from churnkit.io.locks import exclusive
from churnkit.io.workspace import Workspace

SOURCE = {"name": "plain", "fields": {"user_id": "user_id", "ts": "ts", "event": "event", "amount": "amount"},
          "users": {"path": "users.csv", "user_id": "user_id", "signup_ts": "signup", "attributes": {"plan": "plan"}}}


def write_log(folder: Path, rows: int, tag: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = ["user_id,ts,event,amount"]
    lines += [f"{tag}{i % 500},2024-0{1 + i % 9}-{1 + i % 28:02d}T{i % 24:02d}:00:00Z,"
              f"{'purchase' if i % 7 == 0 else 'view'},{'%.2f' % (i % 97) if i % 7 == 0 else ''}" for i in range(rows)]
    (folder / "events.csv").write_text("\n".join(lines) + "\n")
    (folder / "users.csv").write_text("user_id,signup,plan\n" + "".join(
        f"{tag}{i},2023-12-01,{'pro' if i % 2 else 'free'}\n" for i in range(500)))
    return folder / "events.csv"


def consistent(ws: Workspace) -> dict | None:
    """The committed data, checked whole: its summary reconciles with its own files."""
    if ws.current_data() is None:
        return None
    summary = json.loads(ws.summary_path.read_text())
    events = sum(pq.read_metadata(p).num_rows for p in ws.events_dir.rglob("*.parquet"))
    assert events == summary["accepted"], (events, summary["accepted"])
    assert summary["read"] == summary["accepted"] + summary["duplicates"] + summary["rejected"]
    assert pq.read_metadata(ws.quarantine_path).num_rows == summary["rejected"]
    assert pq.read_metadata(ws.users_path).num_rows == summary["users_table"]["accepted"]
    assert summary["events_path"] == str(ws.events_dir)  # the summary describes this very version
    return summary


def cli_ingest(ws: Path, log: Path, source: Path) -> subprocess.Popen:
    exe = Path(sys.executable).with_name("churnkit")
    return subprocess.Popen([str(exe), "--workspace", str(ws), "ingest", str(log), "--source", str(source),
                             "--as-of", "2025-01-01"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.fixture
def source(tmp_path) -> Path:
    p = tmp_path / "plain.yaml"
    p.write_text(json.dumps(SOURCE))
    return p


def test_a_second_writer_fails_at_once_naming_the_holder(tmp_path):
    ws = Workspace(tmp_path / "ws")
    log = write_log(tmp_path / "a", 200, "a")
    src = SourceConfig.model_validate(SOURCE)
    with exclusive(ws.lock_path, "ingest"), pytest.raises(ChurnkitError) as err:
        ingest([log], src, ws, as_of=None, settings=IngestSettings())
    message = str(err.value)
    assert "is busy: ingest by pid" in message and str(os.getpid()) in message and "\n" not in message
    assert ws.current_data() is None  # nothing was written
    summary = ingest([log], src, ws, as_of=None, settings=IngestSettings())  # free again: it runs
    assert consistent(ws) == summary


@pytest.mark.slow
def test_two_ingests_at_once_one_wins_and_nothing_accepted_vanishes(tmp_path, source):
    ws = tmp_path / "ws"
    logs = [write_log(tmp_path / tag, 300_000, tag) for tag in ("a", "b")]
    procs = [cli_ingest(ws, log, source) for log in logs]
    outs = [p.communicate(timeout=600) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], outs
    loser = next(o for p, o in zip(procs, outs, strict=True) if p.returncode == 1)
    assert "is busy: ingest by pid" in loser[1] and len(loser[1].strip().splitlines()) == 1
    winner = next(o for p, o in zip(procs, outs, strict=True) if p.returncode == 0)
    summary = consistent(Workspace(ws))
    assert f"accepted {summary['accepted']:,}" in winner[0]  # what it reported is what is there


@pytest.mark.slow
def test_kill_at_any_moment_leaves_old_or_new_data_whole(tmp_path, source):
    ws = Workspace(tmp_path / "ws")
    first = write_log(tmp_path / "a", 50_000, "a")
    second = write_log(tmp_path / "b", 120_000, "b")
    assert cli_ingest(ws.root, first, source).wait(timeout=300) == 0
    old = consistent(ws)
    start = time.perf_counter()
    assert cli_ingest(ws.root, second, source).wait(timeout=300) == 0
    full = time.perf_counter() - start
    new = consistent(ws)
    assert cli_ingest(ws.root, first, source).wait(timeout=300) == 0  # back to the first data
    seen = set()
    for k in range(9):  # kill -9 at points spread over a whole run
        proc = cli_ingest(ws.root, second, source)
        time.sleep(full * (0.25 + 0.75 * k / 8))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=60)
        now = consistent(ws)
        assert now is not None and now["accepted"] in (old["accepted"], new["accepted"])
        seen.add(now["accepted"])
        if now["accepted"] == new["accepted"]:
            assert cli_ingest(ws.root, first, source).wait(timeout=300) == 0
    # whatever the kills left behind, the next run cleans it away
    assert cli_ingest(ws.root, second, source).wait(timeout=300) == 0
    assert consistent(ws)["accepted"] == new["accepted"]
    leftovers = sorted(p.name for p in ws.data_dir.iterdir() if p.name.startswith("."))
    assert leftovers == [] and len([p for p in ws.data_dir.iterdir() if p.is_dir()]) <= 2
    assert old["accepted"] in seen  # some kills landed before the commit
