"""``churnkit train --problem <uplift problem>``: past randomised campaigns -> an uplift model,
judged on held-out campaigns, tracked and registered in MLflow like every other model.

The rows come from :func:`churnkit.campaigns.uplift_set.uplift_rows`, the choice and the
judgement from :func:`churnkit.campaigns.uplift_fit.fit_uplift`. Where the project's
champions can score (churn, LTV), the held-out users are also ranked by churn risk and value
at risk at the day of their campaign, so the budget table shows what targeting by uplift
buys over them. On a simulation the true individual effects judge every ranking.
"""

from __future__ import annotations

import datetime as dt
import fnmatch
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnkit.campaigns.uplift_fit import UpliftFit, fit_uplift, split_campaigns
from churnkit.campaigns.uplift_set import uplift_rows
from churnkit.config import ProblemConfig
from churnkit.datasets.profile import population_profile
from churnkit.datasets.span import fingerprint
from churnkit.errors import ChurnkitError
from churnkit.flows.build import Dataset, write_dataset
from churnkit.flows.campaigns import control_of, design_of
from churnkit.flows.project import Project
from churnkit.flows.score import scores_on_days
from churnkit.io import tracking
from churnkit.io.artifacts import write_table_with_meta
from churnkit.io.warehouse import connect, workspace_assignments

TRUE_EFFECT = {"retained": ("effect_churn", -1.0), "converted": ("effect_purchase", 1.0),
               "revenue": ("effect_revenue", 1.0)}
"""The simulator's individual-effect column (and sign) for each uplift outcome."""
TEST_CAMPAIGNS_TAG = "test_campaigns"
"""Version tag with the held-out campaigns, so ``promote`` rescores both models on them."""
RANKINGS = {"churn_risk": "churn_probability", "value_at_risk": "value_at_risk"}
"""Rankings compared with uplift: the score column that orders each, highest first."""


@dataclass
class UpliftOutcome:
    problem: str
    fit: UpliftFit
    version: int
    run_id: str
    dataset: Path
    predictions: Path
    tracking_uri: str


def randomised_controls(project: Project, assignments: Any, patterns: list[str] | None) -> dict[str, str]:
    """Campaign id -> control variant for every campaign the problem learns from: those
    matching ``patterns`` whose design (:func:`~churnkit.flows.campaigns.design_of`: the
    config's, else the table's) is randomised."""
    arms = assignments.select("campaign_id", "variant", "is_control", "design").distinct().execute()
    arms["campaign_id"] = arms["campaign_id"].astype(str)
    known = sorted(arms["campaign_id"].unique())
    settings = project.config.campaigns
    declared = arms.groupby("campaign_id")["design"].max()
    chosen = [c for c in known if (patterns is None or any(fnmatch.fnmatchcase(c, p) for p in patterns))
              and design_of(c, declared.get(c), settings) == "randomised"]
    if not chosen:
        raise ChurnkitError(f"no randomised campaign matches {patterns} (known: {', '.join(known) or 'none'})")
    return {c: control_of(c, arms[arms["campaign_id"] == c], settings.control) for c in chosen}


def true_effects(project: Project, df: pd.DataFrame, outcome: str) -> pd.Series | None:
    """The simulator's individual effect of each row's campaign on ``outcome`` (None when
    the workspace holds no simulation, or the simulation lacks one of the rows)."""
    path = project.workspace.campaign_truth_path
    if outcome not in TRUE_EFFECT or not path.exists():
        return None
    column, sign = TRUE_EFFECT[outcome]
    truth = pd.read_parquet(path, columns=["campaign_id", "user_id", column])
    truth["user_id"] = truth["user_id"].astype(str)
    merged = df[["campaign_id", "user_id"]].merge(truth, on=["campaign_id", "user_id"], how="left")
    if merged[column].isna().any():
        return None
    return pd.Series(sign * merged[column].to_numpy("float64"), index=df.index)


def champion_rankings(project: Project, df: pd.DataFrame, campaigns: list[str],
                      notes: list[str]) -> dict[str, pd.Series]:
    """Churn risk and value at risk of the held-out campaigns' users, scored by the project's
    champions at the day each campaign was sent (nothing when they cannot score)."""
    held = df[df["campaign_id"].isin(campaigns)]
    days = pd.to_datetime(held["cutoff"], utc=True).dt.date
    try:
        scored = scores_on_days(project, pd.DataFrame({"user_id": held["user_id"], "day": days}),
                                list(RANKINGS.values()))
    except ChurnkitError as err:
        notes.append(f"no comparison with churn-risk targeting: {str(err).splitlines()[0]}")
        return {}
    return {name: scored[col] for name, col in RANKINGS.items() if scored[col].notna().any()}


def uplift_dataset(project: Project, problem: ProblemConfig, *, engine: str = "duckdb",
                   out: Path | None = None) -> Dataset:
    """The uplift problem's rows (``churnkit build`` and ``train`` alike), written beside the
    other training sets with their manifest."""
    con = connect(engine, project.config.ingest.duckdb_memory_limit)
    events, users = project.tables(con)
    assignments = workspace_assignments(con, project.workspace)
    if assignments is None:
        raise ChurnkitError(f"{problem.name}: no campaign assignments in the workspace to learn from (ingest them "
                            "with the events: a source with an assignments: table, or ingest --assignments FILE)")
    assert problem.uplift is not None
    controls = randomised_controls(project, assignments, problem.uplift.campaigns)
    df, manifest = uplift_rows(events, users, assignments, controls, problem, fingerprint(events))
    path = write_dataset(df, manifest, Path(out) if out else project.workspace.dataset_path(problem.name))
    return Dataset(df, manifest, path)


def train_uplift(project: Project, problem: ProblemConfig, seed: int,
                 progress: Callable[[str], None] | None = None) -> UpliftOutcome:
    """Build the rows, fit and judge, log and register a challenger (see the module doc)."""
    say = progress or (lambda _m: None)
    assert problem.uplift is not None
    uri = project.open_tracking()
    tracking.mark_abandoned(problem.name)
    say("training rows")
    data = uplift_dataset(project, problem)
    df, manifest, dataset = data.frame, data.manifest, data.path
    truth = true_effects(project, df, problem.uplift.outcome)
    notes: list[str] = []
    _, held_out = split_campaigns(df, problem.uplift.holdout_campaigns)
    say("rankings to compare")
    rankings = champion_rankings(project, df, held_out, notes)
    with tracking.training_run(problem.name, run_name=f"train-{problem.name}",
                               tags={"churnkit.seed": seed, "churnkit.kind": "uplift"}) as run:
        say("choosing the learner")
        fit = fit_uplift(df, manifest.feature_names, problem, seed=seed, true_effect=truth, rankings=rankings)
        fit.notes[:0] = notes
        say("logging")
        tracking.log_params({"problem": problem.model_dump(mode="json"), "learner": fit.learner,
                             "train_campaigns": fit.train_campaigns, "test_campaigns": fit.test_campaigns,
                             "n_features": len(manifest.feature_names)})
        tracking.log_metrics(fit.metrics | {f"validation_qini_{k}": v for k, v in fit.validation.items()})
        tracking.log_json(evaluation(fit), "evaluation/uplift.json")
        X = df[manifest.feature_names]
        stored = manifest.with_model(
            profile=population_profile(df, manifest.feature_names),
            plan={"train_campaigns": fit.train_campaigns, "test_campaigns": fit.test_campaigns},
            test_metrics={"model": fit.metrics}, best_params={"learner": fit.learner, **problem.model.params})
        ref = tracking.log_model(fit.model, name="model", manifest=stored, X_example=X.head(5))
        version = tracking.register(ref.run_id, problem.name, metrics=fit.metrics,
                                    tags={TEST_CAMPAIGNS_TAG: ",".join(fit.test_campaigns), "learner": fit.learner})
        predictions = project.workspace.test_predictions_path(problem.name, run.run_id)
        write_table_with_meta(fit.test, evaluation(fit), predictions, predictions.with_suffix(".json"))
        write_table_with_meta(fit.curve, {"problem": problem.name}, predictions.with_name("qini_curve.parquet"),
                              predictions.with_name("qini_curve.json"))
        tracking.log_artifact(predictions, "evaluation")
    return UpliftOutcome(problem.name, fit, version, run.run_id, dataset, predictions, uri)


def held_out_evaluations(project: Project, campaign_id: str) -> list[dict[str, Any]]:
    """The latest evaluation of each uplift problem that held ``campaign_id`` out: its
    metrics, budget table and Qini curve (for the campaign report)."""
    latest: dict[str, dict[str, Any]] = {}
    for run in project.workspace.run_dirs():
        meta_path, curve_path = run / "test_predictions.json", run / "qini_curve.parquet"
        if not (meta_path.exists() and curve_path.exists()):
            continue
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if campaign_id not in meta.get("test_campaigns", []):
            continue
        problem = run.parent.name
        if problem not in latest or meta["created_at"] > latest[problem]["created_at"]:
            latest[problem] = meta | {"problem": problem, "curve": pd.read_parquet(curve_path),
                                      "budget": pd.DataFrame(meta["budget"])}
    return [latest[k] for k in sorted(latest)]


def evaluation(fit: UpliftFit) -> dict[str, Any]:
    """What the held-out judgement showed, written beside the test rows and into the run."""
    return {"outcome": fit.outcome, "learner": fit.learner, "validation_qini": fit.validation, "train_campaigns": fit.train_campaigns,
            "test_campaigns": fit.test_campaigns, "metrics": fit.metrics, "notes": fit.notes,
            "budget": fit.budget.to_dict("records"),
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
