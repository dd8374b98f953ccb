"""The campaign assignments table: validation, repeats, conflicts, the control declaration,
path resolution, append, the CLI and the simulator's output."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churnkit.cli import app
from churnkit.config import IngestSettings, SimulateSettings, SourceConfig, load_source
from churnkit.contracts import ASSIGNMENTS_ARROW_SCHEMA
from churnkit.errors import ConfigError, InputFileError
from churnkit.events.ingest import ingest
from churnkit.flows.simulate import write_simulation
from churnkit.io.warehouse import duckdb_connection, workspace_assignments
from churnkit.io.workspace import Workspace
from churnkit.simulate import simulate

UTC = dt.UTC
AS_OF = dt.datetime(2025, 1, 1, tzinfo=UTC)
FIELDS = {"user_id": "user_id", "ts": "ts", "event": "event"}
EVENTS = "user_id,ts,event\nu1,2024-01-02,view\nu2,2024-01-03,view\nu5,2024-01-04,view\n"
LONG = "v" * 300
ASSIGNMENTS = (
    "uid,campaign,arm,at,horizon\n"
    "u1,c1,control,2024-01-05 10:00,14\n"  # 2 ok
    "u2,c1,treatment,2024-01-05 10:00,14\n"  # 3 ok
    ",c1,control,2024-01-05,14\n"  # 4 missing_user_id
    "u3,,control,2024-01-05,14\n"  # 5 missing_campaign_id
    "u3,c1,,2024-01-05,14\n"  # 6 missing_variant
    "u3,c1,control,soon,14\n"  # 7 bad_timestamp
    "u3,c1,control,2031-01-01,14\n"  # 8 timestamp_out_of_range
    "u3,c1,control,2024-01-05,-3\n"  # 9 bad_horizon
    "u4,c1,control,2024-01-05,2.5\n"  # 10 bad_horizon
    "u1,c1,control,2024-01-05 10:00,14\n"  # 11 identical to line 2 -> duplicate
    "u2,c1,control,2024-01-05 10:00,14\n"  # 12 conflicts with line 3 (variant, is_control)
    "u1,c2,treatment,2024-02-01,\n"  # 13 ok, no horizon
    "u5,c2\n"  # 14 malformed_row
    "\n"  # 15 blank
    "u5,c2,control,2024-02-01,7\n"  # 16 ok
    "u6,c2,treatment,2024-02-02 09:30,7.0\n"  # 17 ok, a user without events
    f"u7,c1,{LONG},2024-01-05,14\n"  # 18 text_too_long
)


def source(**assignments) -> SourceConfig:
    spec = {
        "path": "assignments.csv",
        "user_id": "uid",
        "campaign_id": "campaign",
        "variant": "arm",
        "assigned_ts": {"column": "at", "formats": ["%Y-%m-%d %H:%M", "%Y-%m-%d"]},
        "horizon_days": "horizon",
        "control": "control",
    }
    spec.update(assignments)
    spec = {k: v for k, v in spec.items() if v is not None}
    return SourceConfig.model_validate({"name": "a", "fields": FIELDS, "assignments": spec})


def write(folder: Path, assignments: str = ASSIGNMENTS, events: str = EVENTS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "events.csv").write_text(events)
    (folder / "assignments.csv").write_text(assignments)
    return folder


def quarantined(ws: Workspace) -> list[dict]:
    return [r for r in pq.read_table(ws.quarantine_path).to_pylist() if r["table"] == "assignments"]


def test_assignments_validated_deduplicated_and_stored(tmp_path):
    d = write(tmp_path / "logs")
    ws = Workspace(tmp_path / "ws")
    s = ingest([d / "events.csv"], source(), ws, as_of=AS_OF, settings=IngestSettings())
    a = s["assignments_table"]
    assert (a["read"], a["accepted"], a["duplicates"], a["rejected"], a["blank_lines"]) == (16, 5, 1, 10, 1)
    assert a["read"] == a["accepted"] + a["duplicates"] + a["rejected"]
    assert a["rejected_by_reason"] == {
        "bad_horizon": 2,
        "bad_timestamp": 1,
        "conflicting_assignment": 1,
        "malformed_row": 1,
        "missing_campaign_id": 1,
        "missing_user_id": 1,
        "missing_variant": 1,
        "text_too_long": 1,
        "timestamp_out_of_range": 1,
    }
    assert a["campaigns"] == 2
    assert a["by_campaign"] == {
        "c1": {"assigned": 2, "variants": {"control": 1, "treatment": 1}, "control": "control"},
        "c2": {"assigned": 3, "variants": {"control": 1, "treatment": 2}, "control": "control"},
    }
    assert a["control_declared_by"] == "variant 'control'" and a["campaigns_without_control"] == []
    assert a["assigned_users_without_events"] == 1  # u6
    assert s["assignments_path"] == a["assignments_path"] == str(ws.assignments_path)
    assert s["total"]["quarantined"] == 10

    table = pq.read_table(ws.assignments_path)
    assert table.schema.equals(ASSIGNMENTS_ARROW_SCHEMA)
    assert table.to_pylist() == [
        {"user_id": "u1", "campaign_id": "c1", "variant": "control",
         "assigned_ts": dt.datetime(2024, 1, 5, 10, tzinfo=UTC), "horizon_days": 14, "is_control": True, "design": None},
        {"user_id": "u2", "campaign_id": "c1", "variant": "treatment",
         "assigned_ts": dt.datetime(2024, 1, 5, 10, tzinfo=UTC), "horizon_days": 14, "is_control": False, "design": None},
        {"user_id": "u1", "campaign_id": "c2", "variant": "treatment",
         "assigned_ts": dt.datetime(2024, 2, 1, tzinfo=UTC), "horizon_days": None, "is_control": False, "design": None},
        {"user_id": "u5", "campaign_id": "c2", "variant": "control",
         "assigned_ts": dt.datetime(2024, 2, 1, tzinfo=UTC), "horizon_days": 7, "is_control": True, "design": None},
        {"user_id": "u6", "campaign_id": "c2", "variant": "treatment",
         "assigned_ts": dt.datetime(2024, 2, 2, 9, 30, tzinfo=UTC), "horizon_days": 7, "is_control": False, "design": None},
    ]
    q = quarantined(ws)
    assert [(r["line"], r["reason"]) for r in q] == [
        (4, "missing_user_id"),
        (5, "missing_campaign_id"),
        (6, "missing_variant"),
        (7, "bad_timestamp"),
        (8, "timestamp_out_of_range"),
        (9, "bad_horizon"),
        (10, "bad_horizon"),
        (14, "malformed_row"),
        (18, "text_too_long"),
        (12, "conflicting_assignment"),
    ]
    detail = {r["line"]: r["detail"] for r in q}
    assert detail[5] == "campaign_id is empty (column 'campaign')"
    assert detail[7] == "assigned_ts 'soon' matches none of ['%Y-%m-%d %H:%M', '%Y-%m-%d']"
    assert detail[8] == "assigned_ts 2031-01-01T00:00:00Z is at or after as_of 2025-01-01T00:00:00Z"
    assert detail[10] == "horizon_days '2.5' (column 'horizon') is not a positive whole number of days"
    assert detail[18] == "variant has 300 characters; the limit is 256"
    assert detail[12] == (
        "user 'u2' already has an assignment to campaign 'c1' at line 3 with different values (variant, is_control)"
    )
    assert q[-1]["raw"] == "u2,c1,control,2024-01-05 10:00,14"
    assert q[-1]["source_file"] == str(d / "assignments.csv")

    t = workspace_assignments(duckdb_connection(), ws)
    assert t is not None and str(t.schema()["assigned_ts"]) == "timestamp('UTC')"
    assert t.count().execute() == 5


CONTROL_BY_COLUMN = (
    "uid,campaign,arm,at,ctrl\n"
    "u1,c1,A,2024-01-05,true\n"  # 2
    "u2,c1,B,2024-01-05,False\n"  # 3
    "u3,c1,A,2024-01-05,yes\n"  # 4
    "u4,c1,B,2024-01-05,maybe\n"  # 5 bad_control
    "u5,c1,A,2024-01-05,\n"  # 6 bad_control (empty)
    "u1,c2,A,2024-01-05,1\n"  # 7 conflicting_control: two variants flagged control
    "u2,c2,B,2024-01-05,1\n"  # 8
    "u1,c3,X,2024-01-05,1\n"  # 9 conflicting_control: X flagged both ways
    "u2,c3,X,2024-01-05,0\n"  # 10
    "u3,c3,Y,2024-01-05,0\n"  # 11
    "u1,c4,A,2024-01-05,no\n"  # 12 no control at all: kept, reported
    "u2,c4,B,2024-01-05,n\n"  # 13
)


def test_control_declared_by_a_column(tmp_path):
    d = write(tmp_path / "logs", CONTROL_BY_COLUMN)
    ws = Workspace(tmp_path / "ws")
    s = ingest([d / "events.csv"], source(control=None, control_column="ctrl", horizon_days=None), ws,
               as_of=AS_OF, settings=IngestSettings())
    a = s["assignments_table"]
    assert (a["read"], a["accepted"], a["duplicates"], a["rejected"]) == (12, 5, 0, 7)
    assert a["rejected_by_reason"] == {"bad_control": 2, "conflicting_control": 5}
    assert {c: e["control"] for c, e in a["by_campaign"].items()} == {"c1": "A", "c4": None}
    assert a["control_declared_by"] == "column 'ctrl'" and a["campaigns_without_control"] == ["c4"]
    table = pq.read_table(ws.assignments_path)
    assert [(r["campaign_id"], r["user_id"], r["is_control"], r["horizon_days"]) for r in table.to_pylist()] == [
        ("c1", "u1", True, None), ("c1", "u2", False, None), ("c1", "u3", True, None),
        ("c4", "u1", False, None), ("c4", "u2", False, None),
    ]
    q = quarantined(ws)
    assert [(r["line"], r["reason"]) for r in q] == [
        (5, "bad_control"), (6, "bad_control"),
        (7, "conflicting_control"), (8, "conflicting_control"),
        (9, "conflicting_control"), (10, "conflicting_control"), (11, "conflicting_control"),
    ]
    detail = {r["line"]: r["detail"] for r in q}
    assert detail[5] == "control column 'ctrl' 'maybe' is not true or false"
    assert detail[6] == "control column 'ctrl' is empty"
    assert detail[7] == (
        "campaign 'c2' does not name one control variant in column 'ctrl' (variants 'A', 'B' are each flagged"
        " control): all its rows are rejected"
    )
    assert detail[11] == (
        "campaign 'c3' does not name one control variant in column 'ctrl' (variant 'X' is flagged control on 1"
        " rows and not on 1): all its rows are rejected"
    )


def test_control_not_declared_is_stored_null(tmp_path):
    d = write(tmp_path / "logs", "uid,campaign,arm,at\nu1,c1,a,2024-01-05\nu2,c1,b,2024-01-05\n")
    ws = Workspace(tmp_path / "ws")
    s = ingest([d / "events.csv"], source(control=None, horizon_days=None), ws, as_of=AS_OF,
               settings=IngestSettings())
    a = s["assignments_table"]
    assert a["accepted"] == 2 and a["control_declared_by"] is None and a["campaigns_without_control"] is None
    assert pq.read_table(ws.assignments_path).column("is_control").to_pylist() == [None, None]


def test_control_declared_twice_is_a_one_line_config_error(tmp_path):
    path = tmp_path / "both.yaml"
    path.write_text(
        "name: both\nfields: {user_id: u, ts: t, event: e}\nassignments:\n  path: a.csv\n  user_id: u\n"
        "  campaign_id: c\n  variant: v\n  assigned_ts: at\n  control: control\n  control_column: is_control\n"
    )
    with pytest.raises(ConfigError) as err:
        load_source(str(path))
    message = str(err.value)
    assert "\n" not in message and str(path) in message
    assert "give control (a variant name) or control_column (a true/false column), not both" in message


def test_assignments_path_override_and_errors(tmp_path):
    d = write(tmp_path / "logs")
    other = tmp_path / "elsewhere.csv"
    other.write_text("uid,campaign,arm,at,horizon\nu1,c9,control,2024-03-01,28\n")
    ws = Workspace(tmp_path / "ws")
    s = ingest([d / "events.csv"], source(), ws, as_of=AS_OF, settings=IngestSettings(), assignments_path=other)
    assert s["assignments_table"]["path"] == str(other) and s["assignments_table"]["accepted"] == 1

    with pytest.raises(InputFileError, match="assignments table not found"):
        ingest([d / "events.csv"], source(path="nope.csv"), ws, as_of=AS_OF, settings=IngestSettings())
    with pytest.raises(InputFileError, match=r"missing column 'uid' \(needed by assignments.user_id\)"):
        ingest([d / "events.csv"], source(), ws, as_of=AS_OF, settings=IngestSettings(),
               assignments_path=tmp_path / "logs" / "events.csv")
    plain = SourceConfig.model_validate({"name": "p", "fields": FIELDS})
    with pytest.raises(ConfigError, match="--assignments given, but source 'p' has no `assignments:` mapping"):
        ingest([d / "events.csv"], plain, ws, as_of=AS_OF, settings=IngestSettings(), assignments_path=other)


def test_append_keeps_the_stored_assignments_until_replaced(tmp_path):
    ws = Workspace(tmp_path / "ws")
    day1 = write(tmp_path / "d1", "uid,campaign,arm,at,horizon\nu1,c1,control,2024-01-05,14\n")
    day2 = write(tmp_path / "d2", "uid,campaign,arm,at,horizon\nu1,c2,treatment,2024-01-06,7\n",
                 events="user_id,ts,event\nu2,2024-01-06,view\n")
    plain = SourceConfig.model_validate({"name": "p", "fields": FIELDS})
    s1 = ingest([day1 / "events.csv"], source(), ws, as_of=AS_OF, settings=IngestSettings(), mode="append")
    s2 = ingest([day2 / "events.csv"], plain, ws, as_of=AS_OF, settings=IngestSettings(), mode="append")
    assert pq.read_table(ws.assignments_path).column("campaign_id").to_pylist() == ["c1"]
    assert s2["assignments_table"]["carried_from"] == s1["runs"][0]["at"]
    assert s2["assignments_path"] == str(ws.assignments_path)
    s3 = ingest([day2 / "events.csv"], source(), ws, as_of=AS_OF, settings=IngestSettings(), mode="replace")
    assert pq.read_table(ws.assignments_path).column("campaign_id").to_pylist() == ["c2"]
    assert "carried_from" not in s3["assignments_table"]
    s4 = ingest([day2 / "events.csv"], plain, ws, as_of=AS_OF, settings=IngestSettings())  # replace, no table
    assert not ws.assignments_path.exists() and s4["assignments_path"] is None and "assignments_table" not in s4
    assert workspace_assignments(duckdb_connection(), ws) is None


def test_cli_ingest_takes_assignments_and_says_so(tmp_path):
    d = write(tmp_path / "logs")
    src = tmp_path / "a.yaml"
    spec = source().model_dump(mode="json", exclude_defaults=True)
    src.write_text(json.dumps(spec))  # JSON is YAML
    res = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "ingest", str(d / "events.csv"),
                                   "--source", str(src), "--as-of", "2025-01-01",
                                   "--assignments", str(d / "assignments.csv")])
    assert res.exit_code == 0, res.output
    out = " ".join(res.output.split())
    assert "assignments table: read 16 = accepted 5 + duplicates 1 + rejected 10" in out
    assert "2 campaigns (c1: control 1 (control), treatment 1; c2: control 1 (control), treatment 2)" in out
    assert "1 assigned users without events" in out
    assert "assignments: " in out


def test_simulator_folder_ingests_its_assignments(tmp_path):
    result = simulate(SimulateSettings(users=300, days=90, seed=1))
    out = tmp_path / "sim"
    write_simulation(result, out)
    ws = Workspace(tmp_path / "ws")
    s = ingest([out], load_source("simulator"), ws, as_of=dt.datetime(2024, 3, 31, tzinfo=UTC),
               settings=IngestSettings())
    a = s["assignments_table"]
    n = len(result.assignments)
    assert n > 0 and a["read"] == a["accepted"] == n and a["rejected"] == a["duplicates"] == 0
    assert a["campaigns"] == len(result.plan.campaigns) and a["campaigns_without_control"] == []
    assert a["assigned_users_without_events"] == 0
    stored = pq.read_table(ws.assignments_path)
    assert stored.schema.equals(ASSIGNMENTS_ARROW_SCHEMA)
    expected = result.table("assignments").select(["user_id", "campaign_id", "variant", "assigned_ts", "horizon_days"])
    key = [("campaign_id", "ascending"), ("user_id", "ascending")]
    assert set(stored.column("design").to_pylist()) == {"randomised"}  # the simulator says so
    assert stored.drop_columns(["is_control", "design"]).sort_by(key).cast(expected.schema).equals(expected.sort_by(key))
    assert stored.column("is_control").to_pylist() == [v == "control" for v in stored.column("variant").to_pylist()]
    sends = result.plan.frame(result.start).set_index("campaign_id").send_ts
    first = stored.slice(0, 1).to_pylist()[0]
    assert first["assigned_ts"] == sends[first["campaign_id"]].to_pydatetime()
    assert pa.compute.all(pa.compute.equal(stored.column("horizon_days"), 28)).as_py()
