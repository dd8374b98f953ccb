"""Training one problem: backtest plan, Optuna over the folds, a final fit, a test report.

:func:`fit_and_evaluate` takes a training set and returns the model, the test scores and
the metrics of the model, the baselines and, on simulated data, the references; it knows
nothing of files or MLflow (``flows.train`` reads the data, logs and registers).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from churnkit.config import ClassifierSettings, ProblemConfig
from churnkit.contracts import CLASSIFIER_KINDS, LABEL
from churnkit.datasets.folds import BacktestPlan, plan_backtest, rows, usable_before
from churnkit.datasets.manifest import Manifest, PopulationProfile
from churnkit.datasets.profile import aged, population_profile
from churnkit.metrics import classifier_metrics, ltv_metrics, truth_share
from churnkit.models.baselines import BGNBD_FEATURES
from churnkit.models.classifier import PropensityClassifier
from churnkit.models.ltv import LTVModel
from churnkit.models.outputs import model_outputs
from churnkit.reports import plots
from churnkit.training.comparisons import (
    REFERENCES,
    RFM_FAMILY,
    BaselineRows,
    baseline_scores,
    stacked_scores,
    truth_scores,
)
from churnkit.training.evaluation import calibration_report, compare_with_best
from churnkit.training.promotion import HEADLINE
from churnkit.training.tuning import TuningResult, tune


def score_column(name: str) -> str:
    """A score's column in the test rows (``score_model``, ``score_rfm``, ...)."""
    return f"score_{name}"


MODEL_SCORE = score_column("model")


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
    tuning: TuningResult
    test: pd.DataFrame
    """Test rows: keys, label and one score column per model, baseline and reference."""
    metrics: dict[str, dict[str, float]]
    """``{"model": {...}, "rfm": {...}, "truth": {...}}`` on the test rows."""
    profile: PopulationProfile
    notes: list[str] = field(default_factory=list)
    reference: PopulationProfile | None = None
    """The test rows' features (out-of-sample, the latest population the model was judged
    on), ages as at the last test cutoff: drift's reference. The whole training window was
    tried and flagged more in the simulator's control (258 against 168 flags in 24 checks):
    an older population than the one scored."""
    baselines: dict[str, Any] = field(default_factory=dict)
    """Per baseline what it used (columns, features, fitted parameters)."""
    comparison: dict[str, Any] = field(default_factory=dict)
    """The model minus the best baseline on the headline metric, with its paired bootstrap
    interval (:func:`~churnkit.training.evaluation.compare_with_best`)."""
    calibration: dict[str, Any] = field(default_factory=dict)
    """Calibration at the test cutoff, label-rate drift, calendar cover and the calibration
    chosen (:func:`~churnkit.training.evaluation.calibration_report`); classifiers only."""

    @property
    def kind(self) -> str:
        return self.problem.kind

    def summary_metrics(self) -> dict[str, float]:
        """Flat ``test_<name>_<metric>`` values plus the share of each reference's headroom
        (``test_truth_share_<metric>``, ``test_observable_share_<metric>``), for MLflow."""
        flat = {f"test_{name}_{k}": v for name, m in self.metrics.items() for k, v in m.items()}
        metric, floor = HEADLINE[self.kind]
        c = self.comparison
        if c:
            flat |= {f"test_model_minus_best_{metric}{part}": c[key]
                     for part, key in (("", "estimate"), ("_low", "low"), ("_high", "high"))}
        for ref in REFERENCES:
            if ref in self.metrics:
                flat[f"test_{ref}_share_{metric}"] = truth_share(
                    self.metrics["model"].get(metric, np.nan), self.metrics[ref].get(metric, np.nan), floor
                )
        return flat

    def model_manifest(self, manifest: Manifest) -> Manifest:
        """The training set's manifest plus what scoring needs from training."""
        scores = population_profile(self.test, [MODEL_SCORE]).features[MODEL_SCORE] if len(self.test) else None
        last = max(self.plan.test).isoformat() if self.reference is not None else None
        return manifest.with_model(profile=self.profile, plan=self.plan.to_dict(), test_metrics=self.metrics,
                                   best_params=self.best_params, score_profile=scores,
                                   reference_profile=self.reference, reference_cutoff=last)


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
    settings = problem.model
    if isinstance(settings, ClassifierSettings):
        return lambda params: PropensityClassifier.from_settings(
            settings, params=params, random_state=seed, feature_manifest=specs
        )
    base = settings.model_dump(exclude={"params"}, exclude_none=True)
    extra = dict(settings.params)
    return lambda params: LTVModel(**{**base, "random_state": seed, "lgbm_params": {**extra, **params}})


def named_outputs(model: Any, X: pd.DataFrame, kind: str, name: str = "model") -> dict[str, np.ndarray]:
    """The model's outputs as test-report columns: ``name``, ``name_low``, ``name_high``."""
    return {name if part == "score" else f"{name}_{part}": v for part, v in model_outputs(model, X, kind).items()}


def metrics_for(kind: str, y: np.ndarray, scores: Mapping[str, np.ndarray]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for name, s in scores.items():
        if name.endswith(("_low", "_high")):
            continue
        if kind in CLASSIFIER_KINDS:
            out[name] = classifier_metrics(y, s)
        else:
            low, high = scores.get(f"{name}_low"), scores.get(f"{name}_high")
            out[name] = ltv_metrics(y, s, low, high)
    return out


# --------------------------------------------------------------------------- the middle


def fit_and_evaluate(
    df: pd.DataFrame,
    manifest: Manifest,
    problem: ProblemConfig,
    options: TrainOptions | None = None,
    *,
    truth: pd.DataFrame | None = None,
    on_trial: Callable[..., None] | None = None,
    customers: Callable[[Sequence[dt.date]], pd.DataFrame] | None = None,
) -> TrainResult:
    """Tune on the backtest folds, refit on the final training cutoffs, score the test.

    ``customers(cutoffs)``: every customer's features at those cutoffs (not only the
    eligible rows), what the BG/NBD baseline is fitted on; without it, the test rows.
    """
    options = options or TrainOptions()
    names = manifest.feature_names
    specs = [f.model_dump() for f in manifest.features]
    plan = plan_backtest(dataset_cutoffs(df), problem.horizon_days, n_folds=options.n_folds, n_test=options.n_test)
    make = estimator_factory(problem, specs, options.seed)
    result = tune(
        make, df, plan, problem.tuning, features=names, storage=options.storage,
        study_name=options.study_name, seed=options.seed, n_trials=options.trials,
        timeout=options.timeout, on_trial=on_trial,
    )

    fit_cut, calib_cut = final_split(plan)
    fit_rows, calib_rows, test_rows = rows(df, fit_cut), rows(df, calib_cut), rows(df, plan.test)
    X_fit, y_fit = df.loc[fit_rows, names], df.loc[fit_rows, LABEL].to_numpy("float64")
    eval_set = (df.loc[calib_rows, names], df.loc[calib_rows, LABEL].to_numpy("float64")) if calib_cut else None
    model = make(dict(result.best_params)).fit(X_fit, y_fit, eval_set=eval_set)

    test = df.loc[test_rows, ["user_id", "cutoff", LABEL]].reset_index(drop=True)
    X_test = df.loc[test_rows, names].reset_index(drop=True)
    y = test[LABEL].to_numpy("float64")
    notes = dropped_note(manifest)
    scores = named_outputs(model, X_test, problem.kind)
    rfm_names = [f.name for f in manifest.features if f.family == RFM_FAMILY]
    base_rows = BaselineRows(X_fit, y_fit, *(eval_set or (X_fit.iloc[:0], y_fit[:0])), X_test,
                             test["cutoff"].to_numpy(), (lambda: customers(plan.test)) if customers else None)
    base = baseline_scores(problem.kind, problem.horizon_days, base_rows, rfm_names, options.bgnbd, options.seed)
    scores |= base.scores
    notes += base.notes
    if options.stack_bgnbd:
        stacked = estimator_factory(problem, [*specs, *(f.to_dict() for f in BGNBD_FEATURES)], options.seed)
        scores["stacked"] = stacked_scores(
            stacked, result.best_params, problem.horizon_days, df, names, fit_rows, calib_rows, test_rows,
            lambda m, X: named_outputs(m, X, problem.kind)["model"],
        )
    true = truth_scores(truth, test, problem.kind, problem.horizon_days)
    scores |= true
    if truth is not None and "truth" not in true:
        notes.append(f"no simulator truth at the test cutoff(s) {[str(c) for c in plan.test]} for H={problem.horizon_days}")
    for name, s in scores.items():
        test[score_column(name)] = s
    metrics = metrics_for(problem.kind, y, scores)
    comparison = compare_with_best(problem.kind, y, scores, metrics, list(base.scores), test["user_id"].to_numpy(),
                                   seed=options.seed)
    calibration: dict[str, Any] = {}
    if problem.kind in CLASSIFIER_KINDS:
        choice = {"chosen": getattr(model, "calibration_", "none"), "fitted_on": [str(c) for c in calib_cut],
                  "rows": int(calib_rows.sum()), "candidates": getattr(model, "calibration_scores_", {})}
        calibration, cal_notes = calibration_report(df, plan.final_train, plan.test, metrics["model"], choice)
        notes += cal_notes
    if hasattr(model, "interval_calibration_"):  # the interval's calibration beside its test coverage
        cal = model.interval_calibration_
        metrics["model"] |= {"coverage_nominal": cal["nominal"], "coverage_calibration": cal["coverage"],
                             "interval_share": cal["content"]}
    train_rows = rows(df, plan.final_train)
    return TrainResult(
        problem=problem,
        plan=plan,
        features=names,
        model=model,
        best_params=dict(result.best_params),
        tuning=result,
        test=test,
        metrics=metrics,
        profile=population_profile(df.loc[train_rows], names),
        reference=population_profile(aged(X_test, test["cutoff"], [n for n in manifest.ageing if n in names],
                                          max(plan.test)), names) if len(X_test) else None,
        notes=notes,
        baselines=base.info,
        comparison=comparison,
        calibration=calibration,
    )


def dropped_note(manifest: Manifest) -> list[str]:
    """What the build left out of the model's features (constant or all-null), as a note."""
    dropped = manifest.dropped_features
    if not dropped:
        return []
    shown = ", ".join(f"{d.name} ({d.reason})" for d in dropped[:8])
    total = len(dropped) + len(manifest.features)
    return [f"{len(dropped)} of {total} features dropped at build as constant or all-null: {shown}"
            + (" ..." if len(dropped) > 8 else "")]


def figures(result: TrainResult, X_test: pd.DataFrame | None = None) -> dict[str, Any]:
    """PNG-ready figures of the test report (curves vs baselines, importance, SHAP)."""
    t = result.test
    y = t[LABEL].to_numpy("float64")
    named = {c.removeprefix("score_"): t[c].to_numpy() for c in t.columns
             if c.startswith("score_") and not c.endswith(("_low", "_high"))}
    figs = plots.classifier_figures(y, named) if result.kind in CLASSIFIER_KINDS else plots.ltv_figures(y, named)
    figs["feature_importance"] = plots.feature_importance(result.model.feature_importance())
    if X_test is not None and len(X_test):
        sample = X_test.sample(min(len(X_test), 2000), random_state=0)
        contrib = result.model.contributions(sample)
        figs["shap_summary"] = plots.shap_summary(contrib.drop(columns="bias", errors="ignore"), sample)
    return figs
