"""``churnkit alerts`` on a log with an injected incident: found, kept once across reruns,
moved along from the CLI, and sent to a webhook without ever failing the run for it."""

from __future__ import annotations

import http.server
import json
import shutil
import threading
from typing import ClassVar

import pandas as pd
import pytest

from churnkit.config import ChurnkitConfig, SimulateSettings
from churnkit.flows import alerts as alerts_flow
from churnkit.flows.ingest import ingest
from churnkit.flows.project import Project
from churnkit.io.warehouse import duckdb_connection, workspace_events, workspace_users
from churnkit.io.workspace import Workspace

LOST_DAY = pd.Timestamp("2024-04-10", tz="UTC")
ANDROID_DAY = pd.Timestamp("2024-04-25", tz="UTC")


@pytest.fixture(scope="module")
def incident_ws(simulated_workspace, tmp_path_factory):
    """A simulated log in which 40% of one day's active users vanish (a tracking outage),
    and two weeks later 70% of the Android users' events for a day (an app outage),
    ingested as a simulator folder."""
    sim = simulated_workspace("alerts_sim", SimulateSettings(users=2000, days=130, seed=9, horizons=[7]))
    ev = workspace_events(duckdb_connection(), sim).execute()
    ev["ts"] = pd.to_datetime(ev["ts"], utc=True)
    day = ev["ts"].dt.floor("D") == LOST_DAY
    users = pd.Series(ev.loc[day, "user_id"].unique())
    lost = set(users.sample(frac=0.4, random_state=1))
    ev = ev[~(day & ev["user_id"].isin(lost))]
    people = workspace_users(duckdb_connection(), sim).execute()
    android = people.loc[people["platform"] == "android", "user_id"].sample(frac=0.7, random_state=2)
    ev = ev[~((ev["ts"].dt.floor("D") == ANDROID_DAY) & ev["user_id"].isin(set(android)))]
    root = tmp_path_factory.mktemp("alerts_ws")
    ev.to_parquet(root / "events.parquet")
    people.to_parquet(root / "users.parquet")
    shutil.copy(sim.simulation_dir / "assignments.parquet", root / "assignments.parquet")
    ws = Workspace(root / "ws")
    ingest(Project.at(ws), [root], "simulator")
    return ws


def test_the_lost_day_is_an_alert_and_a_rerun_changes_nothing(incident_ws):
    project = Project.at(incident_ws)
    first = alerts_flow.check(project)
    led = first.ledger
    hit = led[(led["kpi"] == "active_users") & (led["segment"] == "all") & (led["first_period"].astype(str) == "2024-04-10")]
    assert len(hit) == 1 and hit.iloc[0]["observed"] < hit.iloc[0]["low"] and hit.iloc[0]["status"] == "open"
    again = alerts_flow.check(project)
    assert again.new == []
    pd.testing.assert_frame_equal(first.ledger, again.ledger)


def test_a_platform_outage_is_a_segment_alert_and_named_as_the_driver_of_the_total(incident_ws):
    ledger = alerts_flow.check(Project.at(incident_ws)).ledger
    on_day = ledger[ledger["first_period"].astype(str) == "2024-04-25"]
    seg = on_day[on_day["rule"] == "active_users_day_seasonal_by_attributes"]
    assert "platform=android" in set(seg["segment"])
    assert not [s for s in seg["segment"] if s.startswith(("platform=", "region=")) and s != "platform=android"]
    total = on_day[(on_day["rule"] == "active_users_day_seasonal") & (on_day["segment"] == "all")]
    assert len(total) == 1 and total.iloc[0]["drivers"].startswith("platform=android -")


class Hook(http.server.BaseHTTPRequestHandler):
    received: ClassVar[list] = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        Hook.received.append(json.loads(body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args):
        pass


def test_new_alerts_go_to_the_webhook_and_a_dead_hook_is_a_note(incident_ws, tmp_path):
    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        ws = Workspace(tmp_path / "copy")
        ws.root.mkdir(parents=True)
        (ws.root / "data").symlink_to(incident_ws.root / "data", target_is_directory=True)
        url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        out = alerts_flow.check(Project.at(ws, ChurnkitConfig.model_validate({"alerts": {"webhook_url": url}})))
        assert out.new and Hook.received and {a["id"] for a in Hook.received[0]["alerts"]} == set(out.new)
        assert any("sent" in n for n in out.notes)
    finally:
        server.shutdown()
    ws2 = Workspace(tmp_path / "copy2")
    ws2.root.mkdir(parents=True)
    (ws2.root / "data").symlink_to(incident_ws.root / "data", target_is_directory=True)
    dead = ChurnkitConfig.model_validate({"alerts": {"webhook_url": url}})  # the server is gone
    out = alerts_flow.check(Project.at(ws2, dead))
    assert out.new and any("failed" in n for n in out.notes)  # the run went on; the ledger has them
    assert ws2.alerts_path.exists()


def test_alerts_from_the_cli(incident_ws, churnkit, cli):
    run = churnkit("--workspace", str(incident_ws.root), "alerts")
    assert run.returncode == 0, run.stderr
    aid = next(i for i in alerts_flow.read_ledger(Project.at(incident_ws))["id"] if i.endswith("2024-04-10"))
    ack = cli("--workspace", str(incident_ws.root), "alerts", "ack", aid, "--by", "ops", "--note", "tracking outage")
    assert ack.returncode == 0 and "acknowledged by ops (tracking outage)" in " ".join(ack.stdout.split())
    listed = cli("--workspace", str(incident_ws.root), "alerts", "list", "--status", "acknowledged")
    assert aid in "".join(listed.stdout.split())
    done = cli("--workspace", str(incident_ws.root), "alerts", "resolve", aid, "--by", "ops")
    assert done.returncode == 0 and "resolved" in done.stdout
    again = cli("--workspace", str(incident_ws.root), "alerts", "ack", aid)
    assert again.returncode == 1 and again.stderr.strip().count("\n") == 0 and "is resolved" in again.stderr
    unknown = cli("--workspace", str(incident_ws.root), "alerts", "resolve", "nope")
    assert unknown.returncode == 1 and "no alert 'nope'" in unknown.stderr
