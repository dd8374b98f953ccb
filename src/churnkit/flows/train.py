"""``churnkit train``: training set -> tuning -> model -> MLflow run -> challenger version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from churnkit.datasets.folds import rows
from churnkit.datasets.manifest import Manifest
from churnkit.flows.build import training_set
from churnkit.flows.project import Project
from churnkit.io import tracking
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
        result = fit_and_evaluate(data.frame, data.manifest, problem, options, truth=truth, on_trial=trial_logger())
        say("logging")
        version = log_training(result, data.manifest, data.frame, data.path)
    return TrainOutcome(result, version, run.run_id, data.path, data.rebuilt, uri)
