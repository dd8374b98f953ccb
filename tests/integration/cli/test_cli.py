"""The command line as users meet it: help, version, one-line errors, simulate and demo."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
from typer.testing import CliRunner

from churnkit import __version__
from churnkit.cli import app
from churnkit.io.workspace import Workspace

runner = CliRunner()


def test_help_lists_commands():
    res = runner.invoke(app, ["--help"])
    assert res.exit_code == 0
    for cmd in ("simulate", "ingest", "demo", "sources", "score", "risk-list", "recall-list"):
        assert cmd in res.output


def test_version():
    res = runner.invoke(app, ["--version"])
    assert res.exit_code == 0
    assert __version__ in res.output


def test_unknown_config_key_is_one_line_error_naming_it(tmp_path, churnkit):
    cfg = tmp_path / "churnkit.yaml"
    cfg.write_text("workspace: ws\ningest:\n  chunk_rowz: 10\n")
    proc = churnkit("--config", str(cfg), "sources", cwd=tmp_path)
    assert proc.returncode == 1
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "ingest.chunk_rowz" in lines[0] and str(cfg) in lines[0]
    assert "Traceback" not in proc.stderr


def test_bad_option_value_is_one_line_error(tmp_path, churnkit):
    proc = churnkit("--workspace", str(tmp_path), "simulate", "--start", "2024-13-01", "--out", str(tmp_path / "s"))
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0
    assert "--start" in proc.stderr and "2024-13-01" in proc.stderr


def test_simulate_writes_outputs(tmp_path):
    out = tmp_path / "sim"
    res = runner.invoke(
        app, ["--workspace", str(tmp_path), "simulate", "--users", "200", "--days", "60", "--seed", "3",
              "--horizons", "7,28", "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    for name in ("events", "users", "traits", "truth", "campaigns", "assignments"):
        assert (out / f"{name}.parquet").exists()
    meta = json.loads((out / "simulation.json").read_text())
    assert meta["params"]["seed"] == 3 and meta["users"] == 200
    assert pq.read_metadata(out / "events.parquet").num_rows == meta["events"]
    truth = pq.read_table(out / "truth.parquet").to_pandas()
    assert set(truth.horizon_days) == {7, 28}


def test_demo_runs_the_whole_flow(tmp_path, churnkit):
    proc = churnkit("--workspace", str(tmp_path / "ws"), "demo", "--users", "400", "--days", "120",
                    "--trials", "1", "--top", "20", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(Workspace(tmp_path / "ws").summary_path.read_text())
    assert summary["read"] == summary["accepted"] + summary["duplicates"] + summary["rejected"]
    assert summary["rejected"] == 0 and summary["duplicates"] == 0
    meta = json.loads((tmp_path / "ws" / "simulation" / "simulation.json").read_text())
    assert summary["read"] == meta["events"]
    assert "read" in proc.stdout and "workspace" in proc.stdout
    assert "of the observable ceiling" in " ".join(proc.stdout.split())  # simulated: share of each reference
    for name in ("churn_ga4", "purchase_ga4", "revenue_ga4"):
        data = tmp_path / "ws" / "datasets" / f"{name}.parquet"
        manifest = json.loads(data.with_suffix(".manifest.json").read_text())
        assert pq.read_metadata(data).num_rows == manifest["rows"] > 0
    ws = tmp_path / "ws"
    scores = sorted((ws / "scores").glob("scores_*.parquet"))
    assert len(scores) == 2  # the data end, and the earlier run monitoring judges
    scores = scores[-1:]
    meta = json.loads(scores[0].with_suffix(".json").read_text())
    assert {v["version"] for v in meta["versions"].values()} == {1}
    assert pq.read_metadata(scores[0]).num_rows == meta["summary"]["users"] > 0
    date = meta["as_of"]
    for kind in ("risk", "recall"):
        path = ws / "lists" / f"{kind}_{date}.csv"
        assert path.exists() and 1 < len(path.read_text().splitlines()) <= 21
    assert "mlflow ui --backend-store-uri sqlite:///" in proc.stdout.replace("\n", "")
    # an earlier scoring run is monitored (outcomes in) beside the latest, and each model has its card
    history = pd.read_parquet(ws / "monitor" / "churn_ga4" / "history.parquet")
    assert len(history) == 2 and history["status"].tolist() == ["realised", "awaiting outcomes"]
    assert "retrain advised:" in proc.stdout
    cards = sorted(p.name for p in (ws / "reports").glob("model_*.html"))
    assert cards == ["model_churn_ga4_v1.html", "model_purchase_ga4_v1.html", "model_revenue_ga4_v1.html"]
    # the simulator's campaigns are evaluated against their control groups
    results = sorted((ws / "campaigns").glob("*/results.parquet"))
    assert results and "control control" in " ".join(proc.stdout.split())
    assert {"retained", "converted"} <= set(pd.read_parquet(results[0])["metric"])
    # an uplift model from the earlier campaigns (this seeded simulation has two) and a budgeted target list
    text = " ".join(proc.stdout.split())
    targets = list((ws / "lists").glob("target_uplift_revenue_28_*.csv"))
    assert "registered churnkit-uplift_revenue_28" in text and "no uplift model:" not in text
    assert len(targets) == 1 and len(pd.read_csv(targets[0])) <= 20
    # it ends with the KPIs, the alerts and the weekly report, and prints the report's path
    text = proc.stdout.replace("\n", "")
    reports = list((ws / "reports").glob("weekly_*.html"))
    assert len(reports) == 1 and str(reports[0].name) in text and "KPIs from" in text
    assert f"weekly report: {reports[0].resolve()}" in proc.stdout  # said last, whole, to open it
    assert "Model health" in reports[0].read_text() and 'href="model_churn_ga4_v1.html"' in reports[0].read_text()
    assert (ws / "kpis" / "kpis_week.parquet").exists() and (ws / "alerts" / "ledger.parquet").exists()
