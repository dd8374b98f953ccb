"""The users table: validation, repeats and conflicts, path resolution, the simulator's output."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from churnkit.config import IngestSettings, SimulateSettings, SourceConfig, load_source
from churnkit.errors import ConfigError, InputFileError
from churnkit.events.ingest import ingest
from churnkit.flows.simulate import write_simulation
from churnkit.io.workspace import Workspace
from churnkit.simulate import simulate

UTC = dt.UTC
AS_OF = dt.datetime(2025, 1, 1, tzinfo=UTC)
EVENTS = "user_id,ts,event\nu1,2024-01-02,view\nu2,2024-01-03,view\nu9,2024-01-04,view\n"
USERS = (
    "id,signed_up,country,plan\n"
    "u1,2023-12-01 10:00,DE,free\n"  # 2 ok
    "u2,2023-12-02,FR,\n"  # 3 ok, empty attribute -> null
    ",2023-12-03,FR,free\n"  # 4 missing_user_id
    "u4,yesterday,FR,free\n"  # 5 bad_timestamp
    "u5,2031-01-01,FR,free\n"  # 6 timestamp_out_of_range
    "u1,2023-12-01 10:00,DE,free\n"  # 7 identical repeat of line 2 -> duplicate
    "u2,2023-12-02,FR,pro\n"  # 8 conflicts with line 3 (plan)
    "\n"  # 9 blank
    "u3,2023-12-05,,\n"  # 10 ok, a user without events
)


def source(**users) -> SourceConfig:
    spec = {
        "path": "users.csv",
        "user_id": "id",
        "signup_ts": {
            "column": "signed_up",
            "formats": ["%Y-%m-%d %H:%M", "%Y-%m-%d"],
            "timezone": "Europe/Paris",
        },
        "attributes": {"region": "country", "plan": "plan"},
    }
    spec.update(users)
    return SourceConfig.model_validate(
        {"name": "u", "fields": {"user_id": "user_id", "ts": "ts", "event": "event"}, "users": spec}
    )


def write(tmp_path: Path) -> Path:
    d = tmp_path / "logs"
    d.mkdir()
    (d / "events.csv").write_text(EVENTS)
    (d / "users.csv").write_text(USERS)
    return d


def test_users_table_validated_and_reconciled(tmp_path):
    d = write(tmp_path)
    ws = Workspace(tmp_path / "ws")
    s = ingest([d / "events.csv"], source(), ws, as_of=AS_OF, settings=IngestSettings())
    u = s["users_table"]
    assert (u["read"], u["accepted"], u["duplicates"], u["rejected"], u["blank_lines"]) == (
        8,
        3,
        1,
        4,
        1,
    )
    assert u["read"] == u["accepted"] + u["duplicates"] + u["rejected"]
    assert u["rejected_by_reason"] == {
        "bad_timestamp": 1,
        "conflicting_user_id": 1,
        "missing_user_id": 1,
        "timestamp_out_of_range": 1,
    }
    assert (u["users_without_events"], u["event_users_missing_from_table"]) == (1, 1)  # u3; u9
    assert s["users_path"] == str(ws.users_path)

    table = pq.read_table(ws.users_path)
    assert table.schema.field("signup_ts").type == pa.timestamp("us", tz="UTC")
    assert table.column_names == ["user_id", "signup_ts", "region", "plan"]
    assert table.to_pylist() == [
        {
            "user_id": "u1",
            "signup_ts": dt.datetime(2023, 12, 1, 9, tzinfo=UTC),
            "region": "DE",
            "plan": "free",
        },
        {
            "user_id": "u2",
            "signup_ts": dt.datetime(2023, 12, 1, 23, tzinfo=UTC),
            "region": "FR",
            "plan": None,
        },
        {
            "user_id": "u3",
            "signup_ts": dt.datetime(2023, 12, 4, 23, tzinfo=UTC),
            "region": None,
            "plan": None,
        },
    ]
    q = [r for r in pq.read_table(ws.quarantine_path).to_pylist() if r["table"] == "users"]
    assert [(r["line"], r["reason"]) for r in q] == [
        (4, "missing_user_id"),
        (5, "bad_timestamp"),
        (6, "timestamp_out_of_range"),
        (8, "conflicting_user_id"),
    ]
    assert q[1]["detail"] == "signup_ts 'yesterday' matches none of ['%Y-%m-%d %H:%M', '%Y-%m-%d']"
    assert q[3]["detail"] == "user_id 'u2' already has a row at line 3 with different values (plan)"
    assert q[3]["raw"] == "u2,2023-12-02,FR,pro" and q[3]["source_file"] == str(d / "users.csv")


def test_users_path_override_and_errors(tmp_path):
    d = write(tmp_path)
    other = tmp_path / "elsewhere.csv"
    other.write_text("id,signed_up,country,plan\nu7,2023-01-01,IT,free\n")
    ws = Workspace(tmp_path / "ws")
    s = ingest(
        [d / "events.csv"], source(), ws, as_of=AS_OF, settings=IngestSettings(), users_path=other
    )
    assert s["users_table"]["path"] == str(other) and s["users_table"]["accepted"] == 1

    with pytest.raises(InputFileError, match="users table not found"):
        ingest(
            [d / "events.csv"], source(path="nope.csv"), ws, as_of=AS_OF, settings=IngestSettings()
        )
    with pytest.raises(InputFileError, match="missing column 'id' \\(needed by users.user_id\\)"):
        ingest(
            [d / "events.csv"],
            source(),
            ws,
            as_of=AS_OF,
            settings=IngestSettings(),
            users_path=d / "events.csv",
        )
    plain = SourceConfig.model_validate(
        {"name": "p", "fields": {"user_id": "user_id", "ts": "ts", "event": "event"}}
    )
    with pytest.raises(ConfigError, match="no `users:` mapping"):
        ingest(
            [d / "events.csv"], plain, ws, as_of=AS_OF, settings=IngestSettings(), users_path=other
        )


def test_a_new_ingest_without_users_removes_the_old_users_table(tmp_path):
    d = write(tmp_path)
    ws = Workspace(tmp_path / "ws")
    ingest([d / "events.csv"], source(), ws, as_of=AS_OF, settings=IngestSettings())
    assert ws.users_path.exists()
    plain = SourceConfig.model_validate(
        {"name": "p", "fields": {"user_id": "user_id", "ts": "ts", "event": "event"}}
    )
    s = ingest([d / "events.csv"], plain, ws, as_of=AS_OF, settings=IngestSettings())
    assert not ws.users_path.exists() and s["users_path"] is None and "users_table" not in s


def test_simulator_folder_with_builtin_source(tmp_path):
    result = simulate(SimulateSettings(users=150, days=30, seed=3))
    out = tmp_path / "sim"
    write_simulation(result, out)
    ws = Workspace(tmp_path / "ws")
    end = dt.datetime(2024, 1, 31, tzinfo=UTC)
    s = ingest([out], load_source("simulator"), ws, as_of=end, settings=IngestSettings())
    assert [Path(f["path"]).name for f in s["files"]] == [
        "events.parquet"
    ]  # truth etc. are not events
    assert s["read"] == result.n_events == s["accepted"] + s["duplicates"] + s["rejected"]
    assert s["rejected"] == 0 and s["duplicates"] == 0  # keep: coinciding simulated events all stay
    u = s["users_table"]
    assert u["read"] == u["accepted"] == 150 and u["rejected"] == 0
    users = pq.read_table(ws.users_path)
    assert users.column_names == list(result.users().columns)  # what the simulator writes
    assert set(users.column("push_opt_in").to_pylist()) <= {"true", "false"}
