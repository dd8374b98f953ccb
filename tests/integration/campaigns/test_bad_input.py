"""Campaigns that cannot be evaluated, through the CLI: each is a one-line error (exit 1, no
traceback) that says what is wrong: an unknown id, one variant only, no control arm, a
configured control without users, a campaign assigned after the events end."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from churnkit.cli import app

USERS = [f"u{i:02d}" for i in range(40)]
SOURCE = {
    "name": "bad_campaigns",
    "fields": {"user_id": "user_id", "ts": "ts", "event": "event"},
    "assignments": {"path": "assignments.csv", "user_id": "user_id", "campaign_id": "campaign",
                    "variant": "arm", "assigned_ts": {"column": "at", "formats": ["%Y-%m-%d"]},
                    "control": "control"},
}


def _assignments() -> str:
    lines = ["user_id,campaign,arm,at"]
    for i, u in enumerate(USERS):
        arm = "control" if i % 2 else "treatment"
        lines += [f"{u},ok,{arm},2024-01-10",  # a proper A/B test
                  f"{u},no_control,{'a' if i % 2 else 'b'},2024-01-10",  # two arms, neither is control
                  f"{u},only_treatment,treatment,2024-01-10",
                  f"{u},only_control,control,2024-01-10",
                  f"{u},late,{arm},2024-02-15"]  # after the last event (2024-01-31)
    return "\n".join(lines) + "\n"


@pytest.fixture(scope="module")
def ws(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("bad_campaigns")
    events = ["user_id,ts,event"] + [f"{u},2024-01-{day:02d} 12:00,view" for u in USERS for day in range(1, 32, 3)]
    (d / "events.csv").write_text("\n".join(events) + "\n")
    (d / "assignments.csv").write_text(_assignments())
    (d / "source.yaml").write_text(json.dumps(SOURCE))  # JSON is YAML
    res = CliRunner().invoke(app, ["--workspace", str(d / "ws"), "ingest", str(d / "events.csv"),
                                   "--source", str(d / "source.yaml"), "--as-of", "2024-03-01"])
    assert res.exit_code == 0, res.output
    return d


def one_line_error(ws: Path, *args: str) -> str:
    res = CliRunner().invoke(app, ["--workspace", str(ws / "ws"), *args])
    text = res.output.strip()
    assert res.exit_code == 1, text
    assert "Traceback" not in text and text.startswith("error:")
    return " ".join(text.split())


def test_a_proper_campaign_is_evaluated(ws):
    res = CliRunner().invoke(app, ["--workspace", str(ws / "ws"), "campaign", "evaluate", "ok"])
    assert res.exit_code == 0, res.output


@pytest.mark.parametrize("cid, says", [
    ("nope", "no campaign 'nope' in the assignments (known: late, no_control, ok, only_control, only_treatment)"),
    ("no_control", ("campaign no_control has no control arm: none of its users is in the variant the source "
                   "declares control (variants: 'a', 'b')")),
    ("only_treatment", "campaign only_treatment has no control arm"),
    ("only_control", ("campaign only_control has only one variant ('control', the control): an A/B test needs a "
                     "treatment arm with users beside it")),
    ("late", ("campaign late was first assigned at 2024-02-15 00:00:00 UTC, at or after the events end "
             "(2024-01-31 12:00:00 UTC): no outcome window has started")),
])
def test_a_campaign_that_cannot_be_evaluated_is_a_one_line_error(ws, cid, says):
    assert says in one_line_error(ws, "campaign", "evaluate", cid)


def test_the_report_says_the_same(ws):
    assert "campaign late was first assigned at 2024-02-15" in one_line_error(ws, "report", "campaign", "late")


def test_a_configured_control_without_users_is_a_one_line_error(ws):
    config = ws / "churnkit.yaml"
    config.write_text(json.dumps({"campaigns": {"control": {"ok": "holdout"}}}))
    says = one_line_error(ws, "--config", str(config), "campaign", "evaluate", "ok")
    assert "campaign ok: its control arm 'holdout' (campaigns.control.ok) has no users; its variants are " \
           "'control', 'treatment'" in says


def test_a_workspace_ingested_before_designs_is_read_as_randomised(ws, tmp_path):
    old = tmp_path / "old"
    shutil.copytree(ws / "ws", old)
    path = next(old.glob("data/*/assignments.parquet"))
    pq.write_table(pq.read_table(path).drop_columns(["design"]), path)
    res = CliRunner().invoke(app, ["--workspace", str(old), "campaign", "evaluate", "ok"])
    assert res.exit_code == 0, res.output
    assert "control control" in " ".join(res.output.split())


def test_a_lookup_table_with_a_key_twice_is_a_one_line_error(ws, tmp_path):
    (tmp_path / "events.csv").write_text((ws / "events.csv").read_text())
    (tmp_path / "sent.csv").write_text("user_id,campaign\nu01,c1\nu02,c1\n")
    (tmp_path / "starts.csv").write_text("campaign,start\nc1,2024-01-10\nc1,2024-01-11\n")
    spec = {**SOURCE, "assignments": {
        "path": "sent.csv", "user_id": "user_id", "campaign_id": "campaign", "variant": {"const": "received"},
        "assigned_ts": {"column": "start", "formats": ["%Y-%m-%d"]}, "design": "targeted",
        "lookup": {"path": "starts.csv", "key": "campaign", "columns": ["start"]}}}
    (tmp_path / "source.yaml").write_text(json.dumps(spec))
    res = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "ingest", str(tmp_path / "events.csv"),
                                   "--source", str(tmp_path / "source.yaml"), "--as-of", "2024-03-01"])
    assert res.exit_code == 1 and res.output.strip().count("\n") == 0
    assert "campaign 'c1' appears on more than one row of the assignments lookup table" in res.output
