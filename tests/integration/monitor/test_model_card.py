"""The model card of a trained and promoted version: written for the champion and logged to
its training run, its numbers those of the run's test rows and manifest (recomputed here
independently), self-contained, seeded, honest about what it could not find; monitoring
rows (hand-written here) shown for its version only; the CLI's one-line errors."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.metrics import roc_auc_score

from churnkit.flows.model_card import model_card
from churnkit.metrics import normalized_gini

SECTIONS = ("header", "use", "data", "problem", "features", "metrics", "charts", "shap", "monitoring", "drift",
            "limits")
HEADINGS = ("Intended use", "Data window and fingerprint", "Problem definition", "Features by family",
            "Test metrics with baselines", "Calibration and gain", "SHAP summary", "Realised performance since release",
            "Drift status", "Known limits")


@pytest.fixture(scope="module")
def churn(trained_workspace):
    return model_card(trained_workspace.project, "churn_ga4")


def _client(ws) -> MlflowClient:
    return MlflowClient(tracking_uri=f"sqlite:///{ws.mlflow_db}")


def _shown(html: str) -> dict[str, dict[str, float]]:
    rows = re.findall(r'data-score="([a-z_]+)" data-headline="([^"]+)" data-low="([^"]+)" data-high="([^"]+)"', html)
    return {n: {"headline": float(h), "low": float(lo), "high": float(hi)} for n, h, lo, hi in rows}


def test_the_champions_card_holds_its_runs_numbers_and_nothing_from_outside(trained_workspace, churn):
    ws = trained_workspace.ws
    client = _client(ws)
    champion = int(client.get_registered_model("churnkit-churn_ga4").aliases["champion"])
    assert churn.version == champion and churn.path == ws.model_card_path("churn_ga4", champion)
    html = churn.path.read_text(encoding="utf-8")
    run_id = client.get_model_version("churnkit-churn_ga4", str(champion)).run_id
    assert f'data-run-id="{run_id}"' in html

    test = pd.read_parquet(ws.test_predictions_path("churn_ga4", run_id))
    shown = _shown(html)
    baselines = {c.removeprefix("score_") for c in test.columns if c.startswith("score_")}
    assert set(shown) == baselines and {"model", "rfm", "lgbm_rfm"} <= baselines
    for name, got in shown.items():
        assert got["headline"] == pytest.approx(roc_auc_score(test["label"], test[f"score_{name}"]), abs=1e-12), name
        assert got["low"] < got["headline"] < got["high"], name
    evaluation = json.loads(ws.test_predictions_path("churn_ga4", run_id).with_name("evaluation.json").read_text())
    estimate = float(re.search(r'id="comparison" data-estimate="([^"]+)"', html).group(1))
    assert estimate == pytest.approx(evaluation["comparison"]["estimate"], abs=1e-12)

    built = json.loads(ws.dataset_path("churn_ga4").with_suffix(".manifest.json").read_text())
    assert f'data-digest="{built["data"]["digest"]}"' in html
    for family in {f["family"] for f in built["features"]}:
        assert f'data-family="{family}"' in html
    for f in built["features"]:
        assert f"<code>{f['name']}</code>" in html
    for d in built["dropped_features"]:
        assert d["name"] in html

    for section in SECTIONS:
        assert f'<section id="{section}">' in html
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in html
    assert not re.search(r'(src|href)="(https?:)?//', html) and "http://" not in html and "https://" not in html
    assert html.count("data:image/png;base64,") >= 3  # calibration, gain, SHAP
    assert churn.path.stat().st_size < 1_500_000
    assert 'data-source="shap"' in html and "not monitored yet" in html.lower()
    assert "users active (any event but push_sent, refund) in the 7 days before the as-of date" in html


def test_the_same_card_twice_gives_the_same_numbers_and_lands_in_the_training_run(trained_workspace, churn, tmp_path):
    again = model_card(trained_workspace.project, "churn_ga4", version=churn.version, out=tmp_path / "again.html")
    assert again.path == tmp_path / "again.html"
    assert _shown(again.path.read_text(encoding="utf-8")) == _shown(churn.path.read_text(encoding="utf-8"))
    client = _client(trained_workspace.ws)
    run_id = client.get_model_version("churnkit-churn_ga4", str(churn.version)).run_id
    assert [a.path for a in client.list_artifacts(run_id, "model_card")] == ["model_card/model_card.html"]


def test_monitoring_rows_of_this_version_are_shown_with_the_latest_drift(trained_workspace, churn, tmp_path):
    ws = trained_workspace.ws
    v = churn.version
    base = {"problem": "churn_ga4", "role": "churn", "kind": "churn", "scores_file": "s.parquet", "users": 400,
            "headline": "roc_auc", "test_value": 0.78, "features_checked": 95, "drifted_drivers": "",
            "score_psi": 0.02, "score_drifted": False, "predicted_total": 80.0, "realised_total": 85.0}
    history = pd.DataFrame([
        {**base, "as_of": "2024-05-20", "version": v, "features_drifted": 1, "drifted_features": "n_session_7d",
         "expected_value": 0.771, "status": "realised", "outcomes_on": "2024-05-27", "realised_value": 0.7345,
         "drop": 0.0455, "retrain_advised": False, "why": "within tolerance", "realised_roc_auc": 0.7345},
        {**base, "as_of": "2024-05-27", "version": v, "features_drifted": 3,
         "drifted_features": "n_session_7d,n_view_7d,revenue_total", "expected_value": 0.7612,
         "status": "awaiting outcomes", "outcomes_on": "2024-06-03", "realised_value": np.nan, "drop": 0.0188,
         "retrain_advised": True, "why": "3 drivers drifted", "realised_roc_auc": np.nan},
        {**base, "as_of": "2024-05-27", "version": v + 100, "features_drifted": 0, "drifted_features": "",
         "expected_value": 0.6111, "status": "realised", "outcomes_on": "2024-06-03", "realised_value": 0.6222,
         "drop": 0.1, "retrain_advised": False, "why": "another version", "realised_roc_auc": 0.6222},
    ])
    drift = pd.DataFrame({"feature": ["n_session_7d", "revenue_total", "n_view_7d", "age_band_is_55_plus"],
                          "psi": [0.41, 0.27, 0.22, 0.01], "p_value": [1e-6, 1e-4, 1e-3, 0.8],
                          "missing_then": 0.0, "missing_now": 0.0, "out_of_range": [0.05, 0.0, 0.0, 0.0],
                          "rows": 400, "drifted": [True, True, True, False],
                          "why": ["PSI 0.41", "PSI 0.27", "PSI 0.22", ""], "driver_rank": [3, 1, 9, np.nan]})
    paths = [ws.monitor_history_path("churn_ga4"), ws.drift_path("churn_ga4", "2024-05-27")]
    paths[0].parent.mkdir(parents=True, exist_ok=True)
    history.to_parquet(paths[0])
    drift.to_parquet(paths[1])
    try:
        made = model_card(trained_workspace.project, "churn_ga4", out=tmp_path / "card.html")
    finally:
        for p in paths:
            p.unlink()
    html = made.path.read_text(encoding="utf-8")
    section = html[html.index('<section id="monitoring">'):html.index('<section id="limits">')]
    assert re.findall(r'data-as-of="([0-9-]+)"', section) == ["2024-05-20", "2024-05-27"]  # this version only
    assert 'data-realised="0.7345"' in section and 'data-expected="0.7612"' in section
    assert "another version" not in section and "0.6222" not in section
    assert "3 drivers drifted" in section and "retraining advised" in section and "not monitored" not in section.lower()
    assert re.findall(r'data-feature="([a-z0-9_]+)"', section)[:3] == ["n_session_7d", "revenue_total", "n_view_7d"]
    assert "3 of 4 checked columns drifted" in section and section.count("data:image/png;base64,") == 1


def test_a_revenue_card_has_deciles_and_the_interval_s_coverage(trained_workspace):
    made = model_card(trained_workspace.project, "revenue_ga4")
    html = made.path.read_text(encoding="utf-8")
    run_id = _client(trained_workspace.ws).get_model_version("churnkit-revenue_ga4", str(made.version)).run_id
    test = pd.read_parquet(trained_workspace.ws.test_predictions_path("revenue_ga4", run_id))
    model = _shown(html)["model"]
    stored = json.loads(trained_workspace.ws.test_predictions_path("revenue_ga4", run_id).with_name(
        "evaluation.json").read_text())["metrics"]
    assert model["headline"] == pytest.approx(normalized_gini(test["label"], test["score_model"]), abs=1e-12)
    assert model["headline"] == pytest.approx(stored["model"]["gini_norm"], abs=1e-12)  # what training measured
    assert model["low"] < model["headline"] < model["high"]
    assert "<h2>Deciles and gain</h2>" in html and "Revenue interval: covers" in html
    assert "purchases net of refunds" in html


def test_without_test_predictions_the_card_says_so_and_shows_the_stored_metrics(trained_workspace, tmp_path):
    ws = trained_workspace.ws
    client = _client(ws)
    v = int(client.get_registered_model("churnkit-purchase_ga4").aliases["champion"])
    run_id = client.get_model_version("churnkit-purchase_ga4", str(v)).run_id
    local = ws.test_predictions_path("purchase_ga4", run_id)
    logged = next((ws.root / "mlartifacts").glob(f"*/{run_id}/artifacts/evaluation/test_predictions.parquet"))
    aside = tmp_path / "aside"
    aside.mkdir()
    shutil.move(local, aside / "local.parquet")
    try:
        from_run = model_card(trained_workspace.project, "purchase_ga4", out=tmp_path / "from_run.html")
        assert from_run.context["test_source"] == "MLflow run" and from_run.context["metrics"] is not None
        shutil.move(logged, aside / "logged.parquet")
        try:
            bare = model_card(trained_workspace.project, "purchase_ga4", out=tmp_path / "bare.html")
        finally:
            shutil.move(aside / "logged.parquet", logged)
    finally:
        shutil.move(aside / "local.parquet", local)
    html = bare.path.read_text(encoding="utf-8")
    assert 'id="no-test-rows"' in html and bare.context["metrics"] is None
    stored = client.get_model_version("churnkit-purchase_ga4", str(v)).tags["metric.roc_auc"]
    assert f"{float(stored):.3f}" in html
    for section in SECTIONS:
        assert f'<section id="{section}">' in html


@pytest.mark.skipif(shutil.which("chromium") is None, reason="Chromium is not installed (CI installs it: .ci/run)")
def test_a_real_browser_renders_every_section_without_console_errors(churn, tmp_path):
    shot = tmp_path / "card.png"
    base = ["chromium", "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
            "--enable-logging=stderr", "--v=0", "--window-size=1100,2400"]
    dom = subprocess.run([*base, "--dump-dom", churn.path.as_uri()], check=False, capture_output=True, text=True,
                         timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    for section in SECTIONS:
        assert f'id="{section}"' in dom.stdout
    console = [line for line in dom.stderr.splitlines() if "CONSOLE" in line]
    assert not [c for c in console if "error" in c.lower() or "Uncaught" in c], console
    pic = subprocess.run([*base, f"--screenshot={shot}", churn.path.as_uri()], check=False, capture_output=True,
                         text=True, timeout=120)
    assert pic.returncode == 0 and shot.stat().st_size > 20_000


def test_the_cli_prints_the_card_and_says_in_one_line_what_is_missing(trained_workspace, cli):
    ws = trained_workspace.ws
    done = cli("--workspace", ws.root, "report", "model", "churn_ga4")
    assert done.returncode == 0, done.stderr
    assert str(ws.model_card_path("churn_ga4", 1).name) in done.stdout.replace("\n", "")
    for args, says in ((("no_such_problem",), "no registered model"), (("churn_30",), "no registered model"),
                       (("churn_ga4", "--version", "99"), "no version 99")):
        bad = cli("--workspace", ws.root, "report", "model", *args)
        assert bad.returncode != 0 and says in bad.stderr, (args, bad.stderr)
        assert len(bad.stderr.strip().splitlines()) == 1 and "Traceback" not in bad.stderr + bad.stdout
