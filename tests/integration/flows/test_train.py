"""`churnkit train` / `promote` end to end on a small simulated workspace, real MLflow stores.

The simulator's truth is anchored to the end of the log, so the GA4 test cutoff has true
probabilities and the report carries the share of the truth's headroom a model reaches.
"""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pandas as pd
import pytest
from rich.console import Console

from churnkit.cli.output import Printer
from churnkit.config import SimulateSettings, load_problem
from churnkit.flows.build import training_set, write_dataset
from churnkit.flows.project import Project
from churnkit.flows.promote import promote_problem, rollback
from churnkit.flows.train import train
from churnkit.io import tracking
from churnkit.io.workspace import evaluation_path
from churnkit.training.fit import TrainOptions, fit_and_evaluate

FAST = TrainOptions(trials=2, seed=3, bgnbd=False)


@pytest.fixture(scope="module")
def workspace(simulated_workspace) -> Project:
    params = SimulateSettings(users=700, days=140, seed=11, horizons=[7, 28], cutoff_step_days=7)
    return Project.at(simulated_workspace("train", params))


@pytest.fixture(scope="module")
def trained(workspace):
    return train(workspace, "churn_ga4", FAST)


def test_train_logs_a_challenger_with_metrics_plots_and_manifest(workspace, trained):
    r = trained.result
    assert trained.version == 1 and tracking.aliases("churn_ga4") == {"challenger": 1}
    # time order: every training cutoff's label window ends before the test cutoff
    for c in r.plan.final_train:
        assert c + dt.timedelta(days=7) <= r.plan.test[0]
    assert set(r.metrics) == {"model", "recency", "rfm", "linear_rfm", "lgbm_rfm", "truth", "observable"}
    assert r.metrics["model"]["roc_auc"] > r.metrics["rfm"]["roc_auc"]
    assert r.metrics["lgbm_rfm"]["roc_auc"] > r.metrics["recency"]["roc_auc"] > 0.5
    assert r.metrics["truth"]["roc_auc"] > r.metrics["model"]["roc_auc"] > 0.6
    assert r.metrics["truth"]["roc_auc"] > r.metrics["observable"]["roc_auc"] > r.metrics["rfm"]["roc_auc"]
    run = tracking.get_run(trained.run_id)
    for key in ("test_model_roc_auc", "test_rfm_pr_auc", "test_truth_share_roc_auc", "test_lgbm_rfm_roc_auc",
                "test_observable_share_roc_auc", "test_model_ece", "test_model_mean_pred",
                "test_model_minus_best_roc_auc", "test_model_minus_best_roc_auc_low"):
        assert key in run.data.metrics, key
    shares = r.summary_metrics()
    assert shares["test_observable_share_roc_auc"] > shares["test_truth_share_roc_auc"]
    client = tracking.client()
    plots = {f.path for f in client.list_artifacts(trained.run_id, "plots")}
    assert {"plots/roc.png", "plots/calibration.png", "plots/shap_summary.png"} <= plots
    children = client.search_runs([run.info.experiment_id], f"tags.mlflow.parentRunId = '{trained.run_id}'")
    assert len(children) == 2  # one per Optuna trial
    loaded = tracking.load_model("churn_ga4", alias="challenger")
    assert loaded.version == 1 and loaded.manifest["population_profile"]["features"]
    data = training_set(workspace, load_problem("churn_ga4"))
    assert not data.rebuilt  # same events, same problem, same feature code: reused
    df = data.frame
    test = df[df.cutoff.dt.date == r.plan.test[0]].reset_index(drop=True)
    p = loaded.model.predict_proba(test[r.features])[:, 1]
    np.testing.assert_allclose(p, r.test["score_model"].to_numpy(), rtol=0, atol=1e-12)


def test_report_compares_with_the_best_baseline_and_saves_the_test_rows(workspace, trained):
    r = trained.result
    c = r.comparison
    best = max(("recency", "rfm", "linear_rfm", "lgbm_rfm"), key=lambda n: r.metrics[n]["roc_auc"])
    assert c["baseline"] == best and c["metric"] == "roc_auc" and c["n_groups"] == r.metrics["model"]["n"]
    assert c["estimate"] == pytest.approx(r.metrics["model"]["roc_auc"] - r.metrics[best]["roc_auc"])
    assert c["low"] < c["estimate"] < c["high"] and c["high"] - c["low"] < 0.2
    # calibration chosen on the last training cutoff only, with every candidate's figures
    choice = r.calibration["choice"]
    assert choice["fitted_on"] == [str(r.plan.final_train[-1])] and choice["chosen"] == r.model.calibration_
    assert r.calibration["test"]["base_rate"] == r.metrics["model"]["base_rate"]
    assert len(r.calibration["label_rate_by_training_cutoff"]) == len(r.plan.final_train)
    # the test rows, in the workspace and in the run: anyone can compare on the same rows
    path = trained.predictions
    assert path == workspace.workspace.test_predictions_path("churn_ga4", trained.run_id) and path.exists()
    saved = pd.read_parquet(path)
    assert list(saved.columns[:3]) == ["user_id", "cutoff", "label"]
    assert {"score_model", "score_recency", "score_rfm", "score_lgbm_rfm", "score_truth"} <= set(saved.columns)
    pd.testing.assert_frame_equal(saved, r.test)
    assert json.loads(evaluation_path(path).read_text())["comparison"]["baseline"] == best
    logged = {f.path for f in tracking.client().list_artifacts(trained.run_id, "evaluation")}
    assert {"evaluation/test_predictions.parquet", "evaluation/evaluation.json"} <= logged
    # and what train prints
    console = Console(record=True, width=200)
    Printer(console).training(trained)
    text = console.export_text()
    assert f"roc_auc model - {best} (best baseline)" in text and "95% interval" in text
    assert f"calibration: {r.model.calibration_} (chosen on {r.plan.final_train[-1]}" in text
    assert "mean predicted" in text and f"test predictions: {path}" in text


def test_same_data_config_and_seed_give_the_same_metrics(workspace, trained):
    data = training_set(workspace, load_problem("churn_ga4"))
    again = fit_and_evaluate(data.frame, data.manifest, load_problem("churn_ga4"), FAST)
    assert again.metrics["model"] == pytest.approx(trained.result.metrics["model"], rel=1e-12)
    assert again.comparison == trained.result.comparison  # seeded bootstrap, same figures
    assert again.best_params == trained.result.best_params


def test_promotion_rules_force_and_rollback(workspace, trained):
    first = promote_problem(workspace, "churn_ga4")
    assert first.decision.promote and first.champion == 1  # no champion yet: promote
    again = promote_problem(workspace, "churn_ga4")
    assert not again.decision.promote  # already the champion
    challenger = train(workspace, "churn_ga4", TrainOptions(trials=1, seed=4, bgnbd=False))
    # promote rescoring needs the test cutoffs, read from the version without loading it
    assert tracking.version_tags("churn_ga4", 2)["test_cutoffs"] == ",".join(
        c.isoformat() for c in challenger.result.plan.test
    )
    second = promote_problem(workspace, "churn_ga4")
    row = next(r for r in second.decision.table if r["metric"] == "roc_auc")
    chal, champ = row["challenger"], row["champion"]
    # judged on the same test rows: each version rescored gives its own training report's AUC
    assert champ == pytest.approx(trained.result.metrics["model"]["roc_auc"], abs=1e-12)
    assert chal == pytest.approx(challenger.result.metrics["model"]["roc_auc"], abs=1e-12)
    assert second.decision.promote == (chal > champ)
    forced = promote_problem(workspace, "churn_ga4", force=True) if not second.decision.promote else second
    assert forced.champion == 2
    assert rollback("churn_ga4") == 1
    assert tracking.aliases("churn_ga4")["champion"] == 1
    actions = [h["action"] for h in tracking.promotion_history("churn_ga4")]
    # every decision is recorded, promoted or not: first, second and, if second held, the forced one
    assert actions.count("rollback") == 1 and actions.count("promote") == (2 if second.decision.promote else 3)


@pytest.mark.slow
def test_revenue_model_beats_last_period_revenue(workspace):
    out = train(workspace, "revenue_ga4", FAST)
    m = out.result.metrics
    assert {"model", "last_period"} <= set(m)
    assert m["model"]["gini_norm"] > m["last_period"]["gini_norm"]
    assert 0.5 < m["model"]["coverage"] <= 1.0
    assert (out.result.test["score_model_low"] <= out.result.test["score_model_high"]).all()
    # the interval's calibration is recorded beside its test coverage
    assert m["model"]["coverage_nominal"] == pytest.approx(0.8)
    assert m["model"]["coverage_calibration"] >= 0.8 and 0.6 <= m["model"]["interval_share"] < 1
    logged = tracking.get_run(out.run_id).data.metrics
    assert {"test_model_coverage", "test_model_coverage_calibration", "test_model_mean_width"} <= set(logged)


@pytest.mark.slow
def test_train_against_a_real_mlflow_server(workspace, mlflow_server):
    out = train(workspace.with_tracking(mlflow_server), "purchase_ga4", TrainOptions(trials=1, seed=3))
    assert out.tracking_uri == mlflow_server
    loaded = tracking.load_model("purchase_ga4", alias="challenger")
    assert loaded.version == out.version and loaded.manifest["label"]["kind"] == "purchase"
    logged = {f.path for f in tracking.client().list_artifacts(out.run_id, "evaluation")}
    assert "evaluation/test_predictions.parquet" in logged  # uploaded to the server's artefact store
    try:  # BG/NBD by default when the clv extra is installed: fitted on the whole customer base
        import pymc_marketing  # noqa: F401
    except ImportError:
        return
    r = out.result
    day = str(r.plan.test[0])
    assert r.baselines["bgnbd"][day]["fitted_on"].startswith("customer base")
    n_base = int(r.baselines["bgnbd"][day]["fitted_on"].split(", ")[1].split()[0].replace(",", ""))
    assert n_base > r.metrics["model"]["n"]  # everyone with activity, not only the eligible rows
    assert "bgnbd" in r.metrics or any("bgnbd baseline left out" in n for n in r.notes)


def test_training_set_is_rebuilt_when_the_problem_changes(workspace):
    problem = load_problem("churn_ga4")
    before = training_set(workspace, problem).frame
    assert not training_set(workspace, problem).rebuilt
    changed = problem.model_copy(update={"min_history_days": problem.min_history_days + 7})
    data = training_set(workspace, changed)
    assert data.rebuilt and data.manifest.problem.min_history_days == changed.min_history_days
    assert len(data.frame) < len(before)  # users with a shorter history left the population
    assert training_set(workspace, problem).rebuilt  # and back, for whatever runs next


def test_a_training_set_built_before_features_were_dropped_is_rebuilt(workspace):
    problem = load_problem("churn_ga4")
    data = training_set(workspace, problem)
    name = data.manifest.feature_names[-1]
    # as an older build left it: a constant column listed among the model's features
    write_dataset(data.frame.assign(**{name: 0.0}), data.manifest, data.path)
    again = training_set(workspace, problem)
    assert again.rebuilt and again.frame[name].nunique() > 1
    assert not training_set(workspace, problem).rebuilt


@pytest.mark.slow
def test_stacking_reports_the_model_refitted_with_bgnbd_features(workspace):
    pytest.importorskip("pymc_marketing", reason="the clv extra is not installed")
    problem = load_problem("purchase_ga4")
    data = training_set(workspace, problem)
    r = fit_and_evaluate(data.frame, data.manifest, problem, TrainOptions(trials=1, seed=3, bgnbd=False, stack_bgnbd=True))
    plain, stacked = r.metrics["model"], r.metrics["stacked"]
    assert stacked["n"] == plain["n"] and 0.6 < stacked["roc_auc"] < 1.0
    assert stacked["roc_auc"] != plain["roc_auc"]  # a different model, not a copy
    assert r.test["score_stacked"].between(0, 1).all()
