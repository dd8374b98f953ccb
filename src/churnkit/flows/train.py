"""``churnkit train``: training set -> tuning -> model -> MLflow run -> challenger version."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnkit.datasets.build import scoring_features
from churnkit.datasets.folds import rows
from churnkit.datasets.manifest import Manifest
from churnkit.flows.build import training_set
from churnkit.flows.project import Project
from churnkit.io import tracking
from churnkit.io.artifacts import write_table_with_meta
from churnkit.io.workspace import evaluation_path
from churnkit.training.fit import TrainOptions, TrainResult, figures, fit_and_evaluate

TEST_CUTOFFS_TAG = "test_cutoffs"
"""Version tag with the test cutoffs, so ``promote`` can rescore without loading the model."""


@dataclass
class TrainOutcome:
    result: TrainResult
    version: int
    run_id: str
    dataset: Path
    rebuilt: bool
    tracking_uri: str
    predictions: Path | None = None
    """The test rows with the model's and every baseline's score (Parquet, in the workspace)."""


def customer_base(project: Project, manifest: Manifest) -> Callable[[Sequence[dt.date]], pd.DataFrame]:
    """Every customer's features at given cutoffs (everyone with activity before each, not
    only the eligible): what the BG/NBD baseline is fitted on."""

    def at(cutoffs: Sequence[dt.date]) -> pd.DataFrame:
        events, users = project.tables(project.connect())
        return pd.concat([scoring_features(events, users, manifest, c) for c in cutoffs], ignore_index=True)

    return at


def load_truth(project: Project) -> pd.DataFrame | None:
    """The simulator's truth, when the workspace holds a simulation."""
    path = project.workspace.truth_path
    return pd.read_parquet(path) if path.exists() else None


def log_training(result: TrainResult, manifest: Manifest, df: pd.DataFrame, dataset_path: Path | None) -> int:
    """Everything about one training into the active MLflow run; returns the new version."""
    p = result.problem
    tracking.log_params({"problem": p.model_dump(mode="json"), "plan": result.plan.to_dict(),
                         "best": result.best_params, "n_features": len(result.features)})
    tracking.log_dataset_info(
        manifest.data.model_dump(), start=result.plan.cutoffs[0].isoformat(),
        end=result.plan.cutoffs[-1].isoformat(), rows=len(df), cutoffs=len(result.plan.cutoffs),
        dataset=str(dataset_path) if dataset_path else None,
    )
    tracking.log_metrics(result.summary_metrics())
    tracking.log_json(result.metrics, "evaluation/test_metrics.json")
    if result.comparison:
        tracking.set_tags({"churnkit.best_baseline": result.comparison["baseline"]})
    tracking.log_json(result.plan.to_dict(), "evaluation/backtest_plan.json")
    tracking.log_json(result.profile, "population_profile.json")
    if result.notes:
        tracking.log_json(result.notes, "evaluation/notes.json")
    X_test = df.loc[rows(df, result.plan.test), result.features].reset_index(drop=True)
    for name, fig in figures(result, X_test).items():
        tracking.log_figure(fig, f"plots/{name}.png")
    test_cutoffs = ",".join(c.isoformat() for c in result.plan.test)
    tracking.set_tags({"churnkit.test_cutoffs": test_cutoffs})
    ref = tracking.log_model(result.model, name="model", manifest=result.model_manifest(manifest),
                             X_example=X_test.head(5) if len(X_test) else df[result.features].head(5))
    # on the version too: promote reads it from there without loading the model
    return tracking.register(ref.run_id, p.name, metrics=result.metrics["model"],
                             tags={TEST_CUTOFFS_TAG: test_cutoffs})


def evaluation(result: TrainResult) -> dict:
    """What the test predictions' columns are and what they showed, written beside them."""
    return {"problem": result.problem.name, "kind": result.kind, "test_cutoffs": result.plan.to_dict()["test"],
            "metrics": result.metrics, "comparison": result.comparison, "calibration": result.calibration,
            "baselines": result.baselines, "notes": result.notes}


def save_test_predictions(project: Project, result: TrainResult, run_id: str) -> Path:
    """The test rows (keys, label, ``score_<name>`` per model, baseline and reference) in the
    workspace beside the run, and in the run as artefacts: anyone can compare on the same rows."""
    path = project.workspace.test_predictions_path(result.problem.name, run_id)
    write_table_with_meta(result.test, evaluation(result), path, evaluation_path(path))
    tracking.log_artifact(path, "evaluation")
    tracking.log_artifact(evaluation_path(path), "evaluation")
    return path


def run_predictions(project: Project, problem: str, run_id: str | None, tmp: Path) -> tuple[pd.DataFrame | None, dict, str]:
    """The training run's test predictions and evaluation: the workspace's copy, else the
    run's artefacts; (None, {}, why) when neither is there."""
    if run_id is None:
        return None, {}, "the version has no training run"
    path = project.workspace.test_predictions_path(problem, run_id)
    where = "workspace"
    if not path.exists():
        got = tracking.download_artifact(run_id, f"evaluation/{path.name}", tmp)
        if got is None:
            return None, {}, f"test predictions of run {run_id}"
        path, where = got, "MLflow run"
    evaluation = evaluation_path(path)
    if not evaluation.exists():
        evaluation = tracking.download_artifact(run_id, f"evaluation/{evaluation.name}", tmp) or evaluation
    found = json.loads(evaluation.read_text(encoding="utf-8")) if evaluation.exists() else {}
    return pd.read_parquet(path), found, where


def trial_logger() -> Callable[..., None]:
    """``on_trial`` that records each Optuna trial as a child run of the training run."""

    def on_trial(number: int, params: dict, value: float | None, fold_scores: list, state: str) -> None:
        with tracking.child_run(f"trial-{number}", tags={"optuna.state": state}):
            tracking.log_params(params)
            metrics = {f"fold_{i}": s for i, s in enumerate(fold_scores)}
            if value is not None:
                metrics["value"] = value
            tracking.log_metrics(metrics)

    return on_trial


def train(
    project: Project, problem_name: str, options: TrainOptions | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainOutcome:
    """Build or reuse the training set, tune and fit, log it all and register a challenger."""
    say = progress or (lambda _msg: None)
    options = options or TrainOptions()
    problem = project.problem(problem_name)
    uri = project.open_tracking()
    tracking.mark_abandoned(problem.name)  # what a killed earlier training left RUNNING
    say("training set")
    data = training_set(project, problem)
    truth = load_truth(project)
    with tracking.training_run(problem.name, run_name=f"train-{problem.name}",
                               tags={"churnkit.seed": options.seed}) as run:
        say("tuning")
        result = fit_and_evaluate(data.frame, data.manifest, problem, options, truth=truth, on_trial=trial_logger(),
                                  customers=customer_base(project, data.manifest))
        say("logging")
        version = log_training(result, data.manifest, data.frame, data.path)
        predictions = save_test_predictions(project, result, run.run_id)
    return TrainOutcome(result, version, run.run_id, data.path, data.rebuilt, uri, predictions)
