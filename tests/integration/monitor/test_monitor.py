"""``churnkit monitor`` on a trained workspace: realised performance equals an independent
recount from the events, the expected figure is the scores' own, drift has the score's row,
final runs are not redone, alerts reach the ledger once, MLflow holds the figures against
the version, the model card and the weekly report show them; one-line errors."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from churnkit.config import ChurnkitConfig
from churnkit.datasets.labels import realised_labels
from churnkit.flows.alerts import read_ledger
from churnkit.flows.model_card import model_card
from churnkit.flows.monitor import monitor
from churnkit.flows.project import Project
from churnkit.flows.report import weekly
from churnkit.flows.score import score
from churnkit.io import tracking
from churnkit.monitor.history import AWAITING, REALISED


@pytest.fixture(scope="module")
def monitored(trained_workspace):
    """Two scoring runs: one whose outcome windows have closed (4 weeks before the end), one
    at the end (outcomes to come); then one monitoring pass."""
    project = trained_workspace.project
    end = trained_workspace.end  # the data end: events run to its midnight
    early, late = end - dt.timedelta(days=28), end
    for day in (early, late):
        score(project, day, log_run=False)
    return project, early, late, monitor(project)


def _events(project: Project) -> pd.DataFrame:
    return pd.read_parquet(project.workspace.events_dir)


def _independent_churn(events: pd.DataFrame, exclude: list[str], as_of: dt.date, horizon: int) -> set[str]:
    """Users with no activity in [as_of, as_of + H): pandas on the raw events, not the label code."""
    start = pd.Timestamp(as_of, tz="UTC")
    window = events[(events["ts"] >= start) & (events["ts"] < start + pd.Timedelta(days=horizon))
                    & ~events["event"].isin(exclude)]
    return set(window["user_id"].astype(str))


def test_realised_labels_are_the_training_labels_of_the_same_users(monitored):
    project = monitored[0]
    problem = project.problem("churn_ga4")
    data = pd.read_parquet(project.workspace.dataset_path("churn_ga4"))
    cutoff = pd.to_datetime(data["cutoff"]).max()
    rows = data[pd.to_datetime(data["cutoff"]) == cutoff]
    events, _ = project.tables()
    got = realised_labels(events, problem, cutoff.date(), rows["user_id"])
    np.testing.assert_array_equal(got.to_numpy(), rows["label"].to_numpy("float64"))


def test_realised_auc_equals_an_independent_recount_from_the_events(monitored):
    project, early, _late, out = monitored
    row = next(c.row for c in out.checks if c.row["problem"] == "churn_ga4" and c.row["as_of"] == early.isoformat())
    assert row["status"] == REALISED
    scores = pd.read_parquet(project.workspace.scores_path(early))
    inside = scores[scores["churn_in_population"].fillna(False).astype(bool)]
    problem = project.problem("churn_ga4")
    active = _independent_churn(_events(project), problem.activity.exclude, early, problem.horizon_days)
    y = (~inside["user_id"].astype(str).isin(active)).astype(float)
    assert row["users"] == len(inside)
    assert row["realised_roc_auc"] == pytest.approx(roc_auc_score(y, inside["churn_probability"]), abs=1e-12)
    assert row["realised_total"] == y.sum()
    assert row["predicted_total"] == pytest.approx(inside["churn_probability"].sum())
    # expected: the scores re-mapped by a logistic fit on the version's test rows, pairs counted by brute force
    test = pd.read_parquet(project.workspace.test_predictions_path("churn_ga4", tracking.load_model("churn_ga4").run_id))
    x = lambda v: np.log(np.clip(v, 1e-6, 1 - 1e-6) / (1 - np.clip(v, 1e-6, 1 - 1e-6)))
    fit = LogisticRegression(C=1e6).fit(x(test["score_model"].to_numpy()).reshape(-1, 1), test["label"])
    p = inside["churn_probability"].to_numpy()
    q = fit.predict_proba(x(p).reshape(-1, 1))[:, 1]
    w = q[:, None] * (1 - q[None, :])
    np.fill_diagonal(w, 0.0)
    order = np.sign(p[:, None] - p[None, :])
    assert row["expected_recalibrated"]
    assert row["expected_value"] == pytest.approx(float((w * (order + 1) / 2).sum() / w.sum()), abs=1e-9)
    assert row["drop"] == pytest.approx(row["test_value"] - row["realised_value"])
    segments = pd.read_parquet(project.workspace.realised_segments_path("churn_ga4", early))
    stages = segments[segments["segment_by"] == "lifecycle_stage"]
    assert stages["users"].sum() == len(inside) and stages["realised_total"].sum() == y.sum()


def test_a_run_whose_outcomes_are_not_in_is_awaiting_with_an_expected_figure(monitored):
    _, _, late, out = monitored
    rows = {c.row["problem"]: c.row for c in out.checks if c.row["as_of"] == late.isoformat()}
    assert set(rows) == {"churn_ga4", "purchase_ga4", "revenue_ga4"}
    churn = rows["churn_ga4"]
    assert churn["status"] == AWAITING and np.isnan(churn["realised_value"])
    assert 0.5 < churn["expected_value"] < 1.0
    assert churn["outcomes_on"] == (late + dt.timedelta(days=7)).isoformat()
    assert np.isnan(rows["revenue_ga4"]["expected_value"])  # no CBPE for revenue


def test_drift_has_every_model_feature_and_the_score_against_the_test_rows(monitored):
    project, early, _, _out = monitored
    drift = pd.read_parquet(project.workspace.drift_path("churn_ga4", early))
    model = tracking.load_model("churn_ga4")
    assert set(model.manifest["population_profile"]["features"]) | {"score"} == set(drift["feature"])
    score_row = drift[drift["feature"] == "score"].iloc[0]
    assert np.isfinite(score_row["psi"]) and score_row["rows"] > 0
    assert drift["driver_rank"].notna().sum() == 10  # the model's top drivers by mean |SHAP|


def test_a_second_pass_keeps_final_runs_and_adds_no_rows(monitored):
    project, early, late, _ = monitored
    again = monitor(project, log_run=False)
    reused = {(c.row["problem"], c.row["as_of"]) for c in again.checks if c.reused}
    assert {(p, early.isoformat()) for p in ("churn_ga4", "purchase_ga4", "revenue_ga4")} <= reused
    history = pd.read_parquet(project.workspace.monitor_history_path("churn_ga4"))
    assert history["as_of"].tolist() == [early.isoformat(), late.isoformat()]


def test_mlflow_holds_the_figures_against_the_model_version(monitored):
    project, early, _, _ = monitored
    client = MlflowClient(tracking_uri=f"sqlite:///{project.workspace.mlflow_db}")
    version = tracking.resolve_version("churn_ga4")
    exp = client.get_experiment_by_name("churnkit-churn_ga4")
    runs = client.search_runs([exp.experiment_id], "tags.`churnkit.kind` = 'monitoring'")
    mine = [r for r in runs if r.data.tags["churnkit.as_of"] == early.isoformat()]
    assert len(mine) == 1 and mine[0].data.tags["churnkit.model_version"] == str(version)
    history = pd.read_parquet(project.workspace.monitor_history_path("churn_ga4"))
    row = history[history["as_of"] == early.isoformat()].iloc[0]
    assert mine[0].data.metrics["realised_roc_auc"] == pytest.approx(row["realised_roc_auc"])
    source = client.get_model_version("churnkit-churn_ga4", str(version)).source  # models:/<logged model id>
    logged = client.get_logged_model(source.removeprefix("models:/"))
    linked = {m.key: m.value for m in logged.metrics if m.run_id == mine[0].info.run_id}
    assert linked["realised_roc_auc"] == pytest.approx(row["realised_roc_auc"])  # against the version's model
    tags = client.get_model_version("churnkit-churn_ga4", str(version)).tags
    assert tags["monitor.status"] in (REALISED, AWAITING) and "monitor.why" in tags


def test_drift_beyond_strict_thresholds_opens_alerts_once_and_advises_a_retrain(monitored):
    project = monitored[0]
    strict = ChurnkitConfig.model_validate({"monitor": {"psi": 1e-6, "p_value": 0.999999}})
    touchy = Project.at(project.workspace, strict)
    before = set(read_ledger(touchy)["id"])
    path = touchy.workspace.scores_path(monitored[2])  # the run still awaiting outcomes: not final
    first = monitor(touchy, [path], log_run=False)
    churn = next(c for c in first.checks if c.row["problem"] == "churn_ga4")
    assert churn.row["retrain_advised"] and "top drivers drifted" in churn.row["why"]
    ledger = read_ledger(touchy)
    new = set(ledger["id"]) - before
    assert new and all(i.startswith("model:") for i in new) and set(first.new_alerts) == new
    assert monitor(touchy, [path], log_run=False).new_alerts == []


def test_the_model_card_and_the_weekly_report_show_the_monitoring(monitored):
    project, early, _, _ = monitored
    card = model_card(project, "churn_ga4").path.read_text()
    history = pd.read_parquet(project.workspace.monitor_history_path("churn_ga4"))
    realised = history[history["as_of"] == early.isoformat()].iloc[0]["realised_value"]
    assert early.isoformat() in card and f"{realised:.3f}" in card
    report = weekly(project)
    health = {m["problem"]: m for m in report.context["models"]}
    assert set(health) == {"churn_ga4", "purchase_ga4", "revenue_ga4"}
    late = history.iloc[-1]
    assert health["churn_ga4"]["now"] == late["expected_value"] and health["churn_ga4"]["now_is"] == "expected"
    html = report.path.read_text()
    assert "Model health" in html and f"{late['expected_value']:.3f}" in html
    assert 'href="model_churn_ga4_v' in html  # the card written above, linked beside the report


def test_the_cli_prints_advice_and_fails_in_one_line_without_scoring_runs(monitored, cli, tmp_path):
    project = monitored[0]
    done = cli("--workspace", str(project.workspace.root), "monitor", "--no-log")
    assert done.returncode == 0, done.stdout
    assert "retrain advised:" in done.stdout and "churn_ga4" in done.stdout
    empty = cli("--workspace", str(tmp_path / "none"), "monitor")
    assert empty.returncode != 0 and "Traceback" not in empty.stdout + empty.stderr
    assert "no scoring runs" in (empty.stdout + empty.stderr)
