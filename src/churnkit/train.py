"""Training one problem: backtest plan, Optuna over the folds, a final fit, a test report.

The middle (:func:`fit_and_evaluate`) takes a training set and returns the model, the test
scores and the metrics of the model, the baselines and, on simulated data, the truth; it
knows nothing about MLflow. :func:`run_training` is the edge: it reads or builds the
training set, logs everything through :mod:`churnkit.tracking` and registers a challenger.
"""

from __future__ import annotations

import datetime as dt
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import ProblemConfig
from churnkit.errors import ChurnkitError
from churnkit.features.spec import feature_names
from churnkit.folds import BacktestPlan, plan_backtest, rows, usable_before

KINDS_CLASSIFIER = ("churn", "purchase")
TRUTH_COLUMN = {"churn": "p_churn", "purchase": "p_purchase", "revenue": "expected_revenue"}
REFERENCES = {"truth": "", "observable": "_observable"}
"""The simulator's references and their truth-column suffixes: ``truth`` knows each user's
latent state; ``observable`` is the Bayes filter of it from the log (true traits known),
what a perfect model of the log could reach."""
HEADLINE = {"churn": ("roc_auc", 0.5), "purchase": ("roc_auc", 0.5), "revenue": ("gini_norm", 0.0)}
"""Per kind, the metric a model is judged by (higher is better) and its no-skill floor:
``promote`` compares it on the challenger's test cutoffs (ranking is what lists use), and
the report gives the share of the truth's headroom above the floor a model reaches."""


@dataclass(frozen=True)
class TrainOptions:
    """What a training run may vary without touching the problem YAML (the CLI options)."""

    trials: int | None = None
    timeout: float | None = None
    seed: int = 42
    n_folds: int = 3
    n_test: int = 1
    storage: str | None = None
    """Optuna storage shared by parallel workers (journal file path or RDB URL)."""
    study_name: str | None = None
    bgnbd: bool | None = None
    """BG/NBD baseline: None = when pymc-marketing is installed."""
    stack_bgnbd: bool = False
    """Also refit the model with the BG/NBD outputs as features and report it as ``stacked``
    (needs pymc-marketing): does stacking help on this data? The plain model is registered."""


@dataclass
class TrainResult:
    problem: ProblemConfig
    plan: BacktestPlan
    features: list[str]
    model: Any
    best_params: dict[str, Any]
    tuning: Any
    test: pd.DataFrame
    """Test rows: keys, label and one score column per model, baseline and truth."""
    metrics: dict[str, dict[str, float]]
    """``{"model": {...}, "rfm": {...}, "truth": {...}}`` on the test rows."""
    profile: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def kind(self) -> str:
        return self.problem.kind

    def summary_metrics(self) -> dict[str, float]:
        """Flat ``test_<name>_<metric>`` values plus the share of each reference's headroom
        (``test_truth_share_<metric>``, ``test_observable_share_<metric>``), for MLflow."""
        from churnkit.evaluate import truth_share

        flat = {f"test_{name}_{k}": v for name, m in self.metrics.items() for k, v in m.items()}
        metric, floor = HEADLINE[self.kind]
        for ref in REFERENCES:
            if ref in self.metrics:
                flat[f"test_{ref}_share_{metric}"] = truth_share(
                    self.metrics["model"].get(metric, np.nan), self.metrics[ref].get(metric, np.nan), floor
                )
        return flat


# --------------------------------------------------------------------------- pieces


def dataset_cutoffs(df: pd.DataFrame) -> list[dt.date]:
    return sorted({pd.Timestamp(c).date() for c in df["cutoff"].unique()})


def final_split(plan: BacktestPlan) -> tuple[tuple[dt.date, ...], tuple[dt.date, ...]]:
    """Cutoffs to boost on and the later cutoff to early-stop and calibrate on.

    The calibration cutoff is the latest usable one; boosting uses the cutoffs whose label
    windows end by it (the gap rule again), so calibration sees honest out-of-time scores.
    """
    calib = plan.final_train[-1:]
    fit = usable_before(plan.final_train[:-1], calib[0], plan.horizon_days) if calib else ()
    if not fit:
        return plan.final_train, ()
    return fit, calib


def estimator_factory(problem: ProblemConfig, specs: list[dict[str, Any]], seed: int) -> Callable[[dict], Any]:
    """``params -> unfitted estimator`` for the problem's kind and ``model:`` settings."""
    if problem.kind in KINDS_CLASSIFIER:
        from churnkit.models.classifier import PropensityClassifier, classifier_settings

        settings = classifier_settings(problem.model, f"{problem.name}.model")
        return lambda params: PropensityClassifier.from_settings(
            settings, params=params, random_state=seed, feature_manifest=specs
        )
    from churnkit.models.ltv import LTVModel

    base = dict(problem.model or {})
    extra = dict(base.pop("params", None) or {})
    try:
        LTVModel(**base)
    except TypeError as err:
        raise ChurnkitError(f"{problem.name}.model: {err}") from None
    return lambda params: LTVModel(**{**base, "random_state": seed, "lgbm_params": {**extra, **params}})


def predict_scores(model: Any, X: pd.DataFrame, kind: str) -> dict[str, np.ndarray]:
    """The model's test outputs: probability, or LTV with its interval."""
    from churnkit.models.outputs import model_outputs

    outputs = model_outputs(model, X, kind in KINDS_CLASSIFIER)
    return dict(zip(("model", "model_low", "model_high"), outputs, strict=False))


def baseline_scores(
    kind: str, horizon: int, fit_X: pd.DataFrame, fit_y: np.ndarray, test_X: pd.DataFrame,
    bgnbd: bool | None, notes: list[str],
) -> dict[str, np.ndarray]:
    """Scores of the transparent baselines on the test rows, fitted on the same train rows."""
    from churnkit.models import baselines as b

    out: dict[str, np.ndarray] = {}
    if kind in KINDS_CLASSIFIER:
        out["rfm"] = b.RecencyRFMBaseline(kind=kind).fit(fit_X, fit_y).predict_proba(test_X)[:, 1]
    else:
        out["last_period"] = b.LastPeriodRevenue(horizon_days=horizon).fit(fit_X).predict(test_X)
    if bgnbd is False:
        return out
    try:
        # unsupervised: fitted on the customers' summaries at the test cutoff itself
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = b.BGNBDBaseline(horizon_days=horizon).fit(test_X)
            if kind == "purchase":
                out["bgnbd"] = model.predict_proba(test_X)[:, 1]
            elif kind == "churn":
                # a customer-base model speaks of purchases: P(alive) is its closest notion
                out["bgnbd"] = 1.0 - model.transform(test_X)["bgnbd_p_alive"].fillna(0.0).to_numpy()
            else:
                out["bgnbd"] = model.predict(test_X)
    except ChurnkitError as err:
        if bgnbd:
            raise
        notes.append(f"BG/NBD baseline skipped: {err}")
    return out


BGNBD_SPECS = [
    {"name": "bgnbd_p_alive", "description": "BG/NBD P(alive), fitted at the cutoff", "unit": "probability"},
    {"name": "bgnbd_expected_purchases", "description": "BG/NBD expected purchases in the horizon", "unit": "count"},
    {"name": "bgnbd_p_purchase", "description": "BG/NBD P(a purchase in the horizon)", "unit": "probability"},
    {"name": "bgnbd_expected_spend", "description": "BG/NBD + Gamma-Gamma expected spend in the horizon",
     "unit": "currency"},
]
"""Manifest entries of the stacked features (the order of ``baselines.BGNBD_OUTPUTS``)."""


def stacked_scores(
    problem: ProblemConfig, specs: list[dict[str, Any]], seed: int, params: dict[str, Any],
    df: pd.DataFrame, names: list[str], fit: np.ndarray, calib: np.ndarray, test: np.ndarray,
) -> np.ndarray:
    """Test scores of the model refitted, same parameters, with BG/NBD outputs as features.

    One BG/NBD fit per cutoff on that cutoff's summaries, so the extra features are as
    point-in-time as the rest: a test row's never saw its outcome window.
    """
    from churnkit.models.baselines import bgnbd_features

    used = fit | calib | test
    part = df.loc[used, [*names, "cutoff"]]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        extra = bgnbd_features(part, problem.horizon_days)
    X = pd.concat([part[names], extra[[s["name"] for s in BGNBD_SPECS]].astype("float64")], axis=1)
    y = df.loc[used, "label"].to_numpy("float64")
    f, c, t = fit[used], calib[used], test[used]
    make = estimator_factory(problem, [*specs, *BGNBD_SPECS], seed)
    model = make(dict(params)).fit(X[f], y[f], eval_set=(X[c], y[c]) if c.any() else None)
    return predict_scores(model, X[t].reset_index(drop=True), problem.kind)["model"]


def truth_scores(truth: pd.DataFrame | None, test: pd.DataFrame, kind: str, horizon: int) -> dict[str, np.ndarray]:
    """The simulator's references (:data:`REFERENCES`) for the test rows, those it has."""
    if truth is None:
        return {}
    columns = {ref: TRUTH_COLUMN[kind] + suffix for ref, suffix in REFERENCES.items()}
    columns = {ref: col for ref, col in columns.items() if col in truth.columns}
    t = truth[(truth["horizon_days"] == horizon) & truth.get("window_complete", True)]
    t = t.assign(cutoff=pd.to_datetime(t["cutoff"], utc=True))
    keys = test[["user_id", "cutoff"]].assign(cutoff=pd.to_datetime(test["cutoff"], utc=True))
    merged = keys.merge(t[["user_id", "cutoff", *columns.values()]], on=["user_id", "cutoff"], how="left")
    out = {ref: merged[col].to_numpy("float64") for ref, col in columns.items()}
    return {ref: v for ref, v in out.items() if np.isnan(v).mean() <= 0.01}


def metrics_for(kind: str, y: np.ndarray, scores: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    from churnkit.evaluate import classifier_metrics, ltv_metrics

    out: dict[str, dict[str, float]] = {}
    for name, s in scores.items():
        if name.endswith(("_low", "_high")):
            continue
        if kind in KINDS_CLASSIFIER:
            out[name] = classifier_metrics(y, s)
        else:
            low, high = scores.get(f"{name}_low"), scores.get(f"{name}_high")
            out[name] = ltv_metrics(y, s, low, high)
    return out


# --------------------------------------------------------------------------- the middle


def fit_and_evaluate(
    df: pd.DataFrame,
    manifest: Mapping[str, Any],
    problem: ProblemConfig,
    options: TrainOptions = TrainOptions(),
    *,
    truth: pd.DataFrame | None = None,
    on_trial: Callable[..., None] | None = None,
) -> TrainResult:
    """Tune on the backtest folds, refit on the final training cutoffs, score the test."""
    from churnkit.explain import population_profile
    from churnkit.tuning import tune, tuning_settings

    names = feature_names(manifest)
    specs = list(manifest["features"])
    plan = plan_backtest(dataset_cutoffs(df), problem.horizon_days, n_folds=options.n_folds, n_test=options.n_test)
    make = estimator_factory(problem, specs, options.seed)
    settings = tuning_settings(problem.kind, problem.tuning, f"{problem.name}.tuning")
    result = tune(
        make, df, plan, settings, features=names, storage=options.storage,
        study_name=options.study_name, seed=options.seed, n_trials=options.trials,
        timeout=options.timeout, on_trial=on_trial,
    )

    fit_cut, calib_cut = final_split(plan)
    fit_rows, calib_rows, test_rows = rows(df, fit_cut), rows(df, calib_cut), rows(df, plan.test)
    X_fit, y_fit = df.loc[fit_rows, names], df.loc[fit_rows, "label"].to_numpy("float64")
    eval_set = (df.loc[calib_rows, names], df.loc[calib_rows, "label"].to_numpy("float64")) if calib_cut else None
    model = make(dict(result.best_params)).fit(X_fit, y_fit, eval_set=eval_set)

    test = df.loc[test_rows, ["user_id", "cutoff", "label"]].reset_index(drop=True)
    X_test = df.loc[test_rows, names].reset_index(drop=True)
    y = test["label"].to_numpy("float64")
    notes: list[str] = []
    scores = predict_scores(model, X_test, problem.kind)
    scores |= baseline_scores(problem.kind, problem.horizon_days, X_fit, y_fit, X_test, options.bgnbd, notes)
    if options.stack_bgnbd:
        scores["stacked"] = stacked_scores(
            problem, specs, options.seed, result.best_params, df, names, fit_rows,
            calib_rows, test_rows,
        )
    true = truth_scores(truth, test, problem.kind, problem.horizon_days)
    scores |= true
    if truth is not None and "truth" not in true:
        notes.append(f"no simulator truth at the test cutoff(s) {[str(c) for c in plan.test]} for H={problem.horizon_days}")
    for name, s in scores.items():
        test[f"score_{name}"] = s
    train_rows = rows(df, plan.final_train)
    return TrainResult(
        problem=problem,
        plan=plan,
        features=names,
        model=model,
        best_params=dict(result.best_params),
        tuning=result,
        test=test,
        metrics=metrics_for(problem.kind, y, scores),
        profile=population_profile(df.loc[train_rows], dict(manifest)),
        notes=notes,
    )


def figures(result: TrainResult, X_test: pd.DataFrame | None = None) -> dict[str, Any]:
    """PNG-ready figures of the test report (curves vs baselines, importance, SHAP)."""
    from churnkit import plots

    t = result.test
    y = t["label"].to_numpy("float64")
    named = {c.removeprefix("score_"): t[c].to_numpy() for c in t.columns
             if c.startswith("score_") and not c.endswith(("_low", "_high"))}
    figs = plots.classifier_figures(y, named) if result.kind in KINDS_CLASSIFIER else plots.ltv_figures(y, named)
    importance = result.model.feature_importance()
    figs["feature_importance"] = plots.feature_importance(importance)
    if X_test is not None and len(X_test):
        sample = X_test.sample(min(len(X_test), 2000), random_state=0)
        contrib = result.model.contributions(sample)
        figs["shap_summary"] = plots.shap_summary(contrib.drop(columns="bias", errors="ignore"), sample)
    return figs


# --------------------------------------------------------------------------- the edge


def load_truth(simulation_dir: Path) -> pd.DataFrame | None:
    path = Path(simulation_dir) / "truth.parquet"
    return pd.read_parquet(path) if path.exists() else None


def model_manifest(manifest: Mapping[str, Any], result: TrainResult) -> dict[str, Any]:
    """The dataset manifest plus what scoring needs from training: the population profile,
    the plan and the test metrics."""
    return dict(manifest) | {
        "population_profile": result.profile,
        "plan": result.plan.to_dict(),
        "test_metrics": result.metrics,
        "best_params": result.best_params,
    }


def log_training(result: TrainResult, manifest: Mapping[str, Any], df: pd.DataFrame, dataset_path: Path | None) -> int:
    """Everything about one training into the active MLflow run; returns the new version."""
    from churnkit import tracking

    p = result.problem
    tracking.log_params({"problem": p.model_dump(mode="json"), "plan": result.plan.to_dict(),
                         "best": result.best_params, "n_features": len(result.features)})
    data = manifest["data"]
    tracking.log_dataset_info(
        data, start=result.plan.cutoffs[0].isoformat(), end=result.plan.cutoffs[-1].isoformat(),
        rows=len(df), cutoffs=len(result.plan.cutoffs), dataset=str(dataset_path) if dataset_path else None,
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
    import matplotlib.pyplot as plt

    plt.close("all")
    test_cutoffs = ",".join(c.isoformat() for c in result.plan.test)
    tracking.set_tags({"churnkit.test_cutoffs": test_cutoffs})
    ref = tracking.log_model(result.model, name="model", manifest=model_manifest(manifest, result),
                             X_example=X_test.head(5) if len(X_test) else df[result.features].head(5))
    # on the version too: promote reads it from there without loading the model
    return tracking.register(ref.run_id, p.name, metrics=result.metrics["model"], tags={"test_cutoffs": test_cutoffs})


def trial_logger() -> Callable[..., None]:
    """``on_trial`` that records each Optuna trial as a child run of the training run."""
    from churnkit import tracking

    def on_trial(number: int, params: dict, value: float | None, fold_scores: list, state: str) -> None:
        with tracking.child_run(f"trial-{number}", tags={"optuna.state": state}):
            tracking.log_params(params)
            metrics = {f"fold_{i}": s for i, s in enumerate(fold_scores)}
            if value is not None:
                metrics["value"] = value
            tracking.log_metrics(metrics)

    return on_trial


# --------------------------------------------------------------------------- workspace flows


@dataclass
class TrainOutcome:
    result: TrainResult
    version: int
    run_id: str
    dataset: Path
    rebuilt: bool
    tracking_uri: str


def training_set(ws: Any, problem: ProblemConfig, memory_limit: str | None = None) -> tuple[pd.DataFrame, dict, Path, bool]:
    """The problem's training set: reused when it was built from the same events with the same
    problem definition, rebuilt (and rewritten) otherwise."""
    from churnkit.dataset import (
        build_training_set,
        default_dataset_path,
        eligible_features,
        read_manifest,
        write_training_set,
    )
    from churnkit.warehouse import duckdb_connection, fingerprint, workspace_events, workspace_users

    path = default_dataset_path(ws, problem.name)
    con = duckdb_connection(memory_limit)
    events = workspace_events(con, ws)
    current = fingerprint(events)
    if path.exists():
        try:
            manifest = read_manifest(path)
        except ChurnkitError:
            manifest = None
        if manifest is not None:
            same_problem = manifest.get("problem") == problem.model_dump(mode="json")
            same_data = {k: manifest["data"].get(k) for k in current} == current
            # the feature code may have changed since (an expression only: nothing runs)
            planned = eligible_features(events, workspace_users(con, ws), problem, [dt.date.today()],
                                        manifest.get("attribute_levels") or {}).names
            if same_problem and same_data and planned == feature_names(manifest):
                return pd.read_parquet(path), manifest, path, False
    df, manifest = build_training_set(events, workspace_users(con, ws), problem, fp=current)
    write_training_set(df, manifest, path)
    return df, manifest, path, True


def run_training(
    ws: Any,
    problem_name: str,
    options: TrainOptions = TrainOptions(),
    *,
    tracking_uri: str | None = None,
    configured_uri: str | None = None,
    memory_limit: str | None = None,
    progress: Callable[[str], None] | None = None,
) -> TrainOutcome:
    """``churnkit train``: data -> tuning -> model -> MLflow run -> challenger version."""
    from churnkit import tracking
    from churnkit.dataset import load_problem

    say = progress or (lambda _msg: None)
    problem = load_problem(problem_name)
    tracking.open_store(ws.root, configured_uri, tracking_uri)
    uri = tracking.current_uri() or ""
    say("training set")
    df, manifest, path, rebuilt = training_set(ws, problem, memory_limit)
    truth = load_truth(ws.simulation_dir)
    with tracking.training_run(problem.name, run_name=f"train-{problem.name}",
                               tags={"churnkit.seed": options.seed}) as run:
        say("tuning")
        result = fit_and_evaluate(df, manifest, problem, options, truth=truth, on_trial=trial_logger())
        say("logging")
        version = log_training(result, manifest, df, path)
    return TrainOutcome(result, version, run.run_id, path, rebuilt, uri)


def promote_problem(
    ws: Any,
    problem_name: str,
    *,
    force: bool = False,
    version: int | None = None,
    tracking_uri: str | None = None,
    configured_uri: str | None = None,
) -> Any:
    """``churnkit promote``: challenger vs champion on the challenger's own test cutoffs."""
    from churnkit import tracking
    from churnkit.dataset import default_dataset_path, load_problem

    problem = load_problem(problem_name)
    tracking.open_store(ws.root, configured_uri, tracking_uri)
    metric, _floor = HEADLINE[problem.kind]
    challenger = tracking.resolve_version(problem.name, tracking.CHALLENGER, version)
    cutoffs = tracking.version_tags(problem.name, challenger).get("test_cutoffs", "")
    path = default_dataset_path(ws, problem.name)
    if not cutoffs or not path.exists():
        evaluate = None  # compare the metrics recorded at registration
    else:
        df = pd.read_parquet(path)
        test = df.loc[rows(df, cutoffs.split(","))]

        def evaluate(loaded: Any) -> dict[str, float]:
            names = feature_names(loaded.manifest)
            scores = predict_scores(loaded.model, test[names], problem.kind)
            return metrics_for(problem.kind, test["label"].to_numpy("float64"), scores)["model"]

    return tracking.promote(problem.name, evaluate, metric, "maximize", force=force, version=version)
