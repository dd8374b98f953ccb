"""Optuna search over the backtest folds, for any estimator with ``fit(X, y, eval_set=)``.

A trial samples parameters, fits one estimator per fold (training cutoffs -> validation
cutoffs, see :mod:`churnkit.folds`) and is worth the mean fold score. After each fold the
running mean is reported, so a pruner can stop a trial that is already worse than most.
The study is created before optimising (``load_if_exists``), so several processes can
share one storage and a later call resumes it with more trials.

This module knows nothing of MLflow: ``on_trial`` lets the caller log each trial.
"""

from __future__ import annotations

import contextlib
import math
import os
import socket
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
import optuna
import pandas as pd
from pydantic import Field, model_validator

from churnkit import evaluate as ev
from churnkit.config import StrictModel, parse_model
from churnkit.errors import ChurnkitError, ConfigError
from churnkit.folds import BacktestPlan, rows
from churnkit.models.lgbm import canonical_params

KEYS = ("user_id", "cutoff")
LABEL = "label"


# --------------------------------------------------------------------------- settings


class SearchParam(StrictModel):
    """One dimension of the search space."""

    type: Literal["int", "float", "categorical"]
    low: float | None = None
    high: float | None = None
    log: bool = False
    step: float | None = None
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _check(self) -> SearchParam:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical parameter needs non-empty choices")
            if self.low is not None or self.high is not None or self.log:
                raise ValueError("a categorical parameter takes choices, not low/high/log")
            return self
        if self.choices is not None:
            raise ValueError(f"an {self.type} parameter takes low/high, not choices")
        if self.low is None or self.high is None:
            raise ValueError(f"an {self.type} parameter needs low and high")
        if self.low > self.high:
            raise ValueError(f"low {self.low} is above high {self.high}")
        if self.log and self.low <= 0:
            raise ValueError("log scale needs low > 0")
        if self.log and self.step is not None:
            raise ValueError("give either log or step, not both")
        if self.type == "int" and (self.low != int(self.low) or self.high != int(self.high)):
            raise ValueError("an int parameter needs whole-number low and high")
        return self


class PrunerSettings(StrictModel):
    """Stops trials early on the running fold mean. Steps are folds."""

    type: Literal["median", "halving", "none"] = "median"
    n_startup_trials: int = Field(5, ge=0)
    """median: trials that always run to the end before pruning starts."""
    n_warmup_steps: int = Field(0, ge=0)
    """median: folds a trial always completes."""
    min_resource: int = Field(1, ge=1)
    """halving: folds before the first rung."""
    reduction_factor: int = Field(3, ge=2)
    """halving: keep the best 1/reduction_factor at each rung."""


METRICS: dict[str, Literal["minimize", "maximize"]] = {
    "log_loss": "minimize",
    "brier": "minimize",
    "roc_auc": "maximize",
    "pr_auc": "maximize",
    "rmse": "minimize",
    "mae": "minimize",
    "gini": "maximize",
}
"""Metrics with a built-in scorer (:func:`scorer`) and their direction."""


class TuningSettings(StrictModel):
    """The ``tuning:`` block of a problem YAML (defaults per kind: :func:`tuning_settings`)."""

    n_trials: int = Field(30, ge=1)
    timeout_s: float | None = Field(None, gt=0)
    metric: str = "log_loss"
    direction: Literal["minimize", "maximize"] | None = None
    """Defaults to the metric's own direction."""
    space: dict[str, SearchParam] = Field(default_factory=dict)
    pruner: PrunerSettings = PrunerSettings()
    n_startup_trials: int = Field(10, ge=1)
    """TPE: random trials before the model of good/bad regions takes over."""

    @model_validator(mode="after")
    def _direction(self) -> TuningSettings:
        if self.direction is None:
            if self.metric not in METRICS:
                raise ValueError(
                    f"unknown metric '{self.metric}' (known: {', '.join(METRICS)}); "
                    "give 'direction' to use your own"
                )
            object.__setattr__(self, "direction", METRICS[self.metric])
        return self


def _p(type_: str, low: float, high: float, log: bool = False) -> dict[str, Any]:
    return {"type": type_, "low": low, "high": high, "log": log}


DEFAULT_SPACE: dict[str, dict[str, Any]] = {
    "learning_rate": _p("float", 0.01, 0.2, log=True),
    "num_leaves": _p("int", 8, 128, log=True),
    "min_child_samples": _p("int", 10, 400, log=True),
    "feature_fraction": _p("float", 0.4, 1.0),
    "bagging_fraction": _p("float", 0.5, 1.0),
    "lambda_l2": _p("float", 1e-3, 30.0, log=True),
}
"""LightGBM's main capacity and regularisation knobs, in ranges that suit 10^3-10^6 rows."""

DEFAULT_METRIC: dict[str, str] = {"churn": "log_loss", "purchase": "log_loss", "revenue": "rmse"}
"""log loss judges calibrated probabilities, not only ranking; RMSE the revenue scale."""


def tuning_settings(
    kind: str, tuning: Mapping[str, Any] | None = None, origin: str = "tuning"
) -> TuningSettings:
    """Settings for a problem of ``kind`` from its ``tuning`` dict; one-line ConfigError.

    ``space`` merges over :data:`DEFAULT_SPACE` by name; a name set to null drops it.
    Parameter names must be LightGBM parameters (any alias, each parameter once).
    """
    if kind not in DEFAULT_METRIC:
        raise ConfigError(f"{origin}: unknown problem kind '{kind}'")
    data = dict(tuning or {})
    user_space = data.pop("space", None) or {}
    if not isinstance(user_space, Mapping):
        raise ConfigError(f"{origin}: 'space' must be a mapping of parameter name to range")
    space = {**DEFAULT_SPACE, **user_space}
    space = {k: v for k, v in space.items() if v is not None}
    try:
        canonical_params(dict.fromkeys(space), f"{origin}.space")  # known names, each once
    except ChurnkitError as err:
        raise ConfigError(str(err)) from None
    data.setdefault("metric", DEFAULT_METRIC[kind])
    settings = parse_model({**data, "space": space}, TuningSettings, origin)
    if not settings.space:
        raise ConfigError(f"{origin}.space: nothing left to tune")
    return settings


# --------------------------------------------------------------------------- scoring


class Estimator(Protocol):
    def fit(self, X: pd.DataFrame, y: Any, *, eval_set: Any = None) -> Any: ...


ScoreFn = Callable[[Any, pd.DataFrame, np.ndarray], float]
"""``score_fn(fitted_estimator, X_valid, y_valid) -> float``."""


def scorer(metric: str) -> ScoreFn:
    """Built-in score function for ``metric``: probabilities for classification metrics
    (``predict_proba[:, 1]``), ``predict`` for regression ones. The metrics are
    :mod:`churnkit.evaluate`'s, so a tuned score and the reported one agree."""
    from sklearn.metrics import average_precision_score, roc_auc_score

    def proba(est: Any, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(est.predict_proba(X))[:, 1]

    def pred(est: Any, X: pd.DataFrame) -> np.ndarray:
        return np.asarray(est.predict(X), dtype="float64")

    table: dict[str, ScoreFn] = {
        "log_loss": lambda e, X, y: ev.log_loss(y, proba(e, X)),
        "brier": lambda e, X, y: ev.brier(y, proba(e, X)),
        "roc_auc": lambda e, X, y: float(roc_auc_score(y, proba(e, X))),
        "pr_auc": lambda e, X, y: float(average_precision_score(y, proba(e, X))),
        "rmse": lambda e, X, y: ev.rmse(y, pred(e, X)),
        "mae": lambda e, X, y: ev.mae(y, pred(e, X)),
        "gini": lambda e, X, y: ev.normalized_gini(y, pred(e, X)),
    }
    if metric not in table:
        raise ChurnkitError(f"no built-in scorer for metric '{metric}'; pass score_fn")
    return table[metric]


# --------------------------------------------------------------------------- storage


def open_storage(storage: str | Path | optuna.storages.BaseStorage | None) -> Any:
    """None: in memory. A URL with ``://``: an RDB store (e.g. ``sqlite:///optuna.db``).
    Anything else: a journal file (created with its folder), safe for several processes."""
    if storage is None or isinstance(storage, optuna.storages.BaseStorage):
        return storage
    text = str(storage)
    if "://" in text:
        return text
    path = Path(text).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.journal.JournalStorage(backend)


def make_pruner(p: PrunerSettings) -> optuna.pruners.BasePruner:
    if p.type == "median":
        return optuna.pruners.MedianPruner(
            n_startup_trials=p.n_startup_trials, n_warmup_steps=p.n_warmup_steps
        )
    if p.type == "halving":
        return optuna.pruners.SuccessiveHalvingPruner(
            min_resource=p.min_resource, reduction_factor=p.reduction_factor
        )
    return optuna.pruners.NopPruner()


def open_study(
    settings: TuningSettings,
    *,
    storage: str | Path | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    seed: int = 0,
) -> optuna.Study:
    """Create or load the study, then attach a sampler seeded by ``seed`` plus the trials
    already in it, so a resumed study does not re-propose its first random points."""
    store = open_storage(storage)
    name = study_name or "churnkit-tuning"
    pruner = make_pruner(settings.pruner)
    study = optuna.create_study(
        storage=store, study_name=name, direction=settings.direction, load_if_exists=True,
        pruner=pruner,
    )
    if study.direction.name.lower() != settings.direction:
        raise ChurnkitError(
            f"study '{name}' already exists and {study.direction.name.lower()}s; "
            f"settings say {settings.direction} (use another study name)"
        )
    study.sampler = optuna.samplers.TPESampler(
        seed=seed + len(study.trials), n_startup_trials=settings.n_startup_trials
    )
    return study


# --------------------------------------------------------------------------- tuning


@dataclass(frozen=True)
class FoldData:
    X_train: pd.DataFrame
    y_train: np.ndarray
    X_valid: pd.DataFrame
    y_valid: np.ndarray


@dataclass(frozen=True)
class TuningResult:
    best_params: dict[str, Any]
    best_value: float
    n_trials_done: int
    """Trials this call finished (complete, pruned or failed); the study may hold more."""
    study: optuna.Study
    best_attrs: dict[str, Any] = field(default_factory=dict)
    """The best trial's user attributes: ``fold_scores``, ``best_iterations``, ``worker``."""


OnTrial = Callable[[int, dict[str, Any], float | None, list[float], str], None]
"""``on_trial(trial_number, params, value, fold_scores, state)``; state is COMPLETE,
PRUNED or FAIL; value is None unless complete."""


def fold_data(
    data: pd.DataFrame, plan: BacktestPlan, features: Sequence[str] | None = None,
    label: str = LABEL,
) -> list[FoldData]:
    """Each fold's training and validation rows, cut once before the trials."""
    if label not in data.columns:
        raise ChurnkitError(f"training set has no '{label}' column")
    names = list(features) if features is not None else [
        c for c in data.columns if c not in (*KEYS, label)
    ]
    out = []
    for i, f in enumerate(plan.folds):
        tr, va = rows(data, f.train), rows(data, f.valid)
        if not tr.any() or not va.any():
            raise ChurnkitError(
                f"fold {i}: no rows at its {'training' if not tr.any() else 'validation'} cutoffs"
            )
        out.append(FoldData(
            data.loc[tr, names], data.loc[tr, label].to_numpy("float64"),
            data.loc[va, names], data.loc[va, label].to_numpy("float64"),
        ))
    return out


def suggest(trial: optuna.Trial, space: Mapping[str, SearchParam]) -> dict[str, Any]:
    """One point of the search space."""
    out: dict[str, Any] = {}
    for name, p in space.items():
        if p.type == "categorical":
            out[name] = trial.suggest_categorical(name, p.choices)
        elif p.type == "int":
            out[name] = trial.suggest_int(
                name, int(p.low), int(p.high), log=p.log, step=int(p.step or 1)
            )
        else:
            out[name] = trial.suggest_float(name, p.low, p.high, log=p.log, step=p.step)
    return out


@contextlib.contextmanager
def _optuna_quiet(verbose: bool) -> Iterator[None]:
    before = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.INFO if verbose else optuna.logging.WARNING)
    try:
        yield
    finally:
        optuna.logging.set_verbosity(before)


def tune(
    make_estimator: Callable[[dict[str, Any]], Estimator],
    data: pd.DataFrame,
    plan: BacktestPlan,
    settings: TuningSettings,
    *,
    score_fn: ScoreFn | None = None,
    features: Sequence[str] | None = None,
    label: str = LABEL,
    storage: str | Path | optuna.storages.BaseStorage | None = None,
    study_name: str | None = None,
    seed: int = 0,
    n_trials: int | None = None,
    timeout: float | None = None,
    on_trial: OnTrial | None = None,
    verbose: bool = False,
) -> TuningResult:
    """Search ``settings.space`` for the best mean fold score.

    ``make_estimator(params)`` builds an unfitted estimator from one sampled point; it is
    fitted as ``fit(X_train, y_train, eval_set=(X_valid, y_valid))`` and scored by
    ``score_fn(estimator, X_valid, y_valid)`` (default: :func:`scorer` of the metric). The
    validation block is used for early stopping too, so fold scores are slightly optimistic;
    the plan's test cutoffs stay untouched. ``features`` defaults to every column but the
    keys and the label. ``n_trials``/``timeout`` override the settings for this call.
    Parallel workers on one storage should each get their own ``seed``.
    """
    folds = fold_data(data, plan, features, label)
    score = score_fn or scorer(settings.metric)
    worker = f"{socket.gethostname()}:{os.getpid()}"

    def objective(trial: optuna.Trial) -> float:
        params = suggest(trial, settings.space)
        trial.set_user_attr("worker", worker)
        scores: list[float] = []
        iterations: list[int | None] = []
        for step, f in enumerate(folds):
            est = make_estimator(dict(params))
            est.fit(f.X_train, f.y_train, eval_set=(f.X_valid, f.y_valid))
            value = float(score(est, f.X_valid, f.y_valid))
            if not math.isfinite(value):
                raise ChurnkitError(f"trial {trial.number}, fold {step}: score is {value}")
            scores.append(value)
            best_it = getattr(est, "best_iteration_", None)
            iterations.append(int(best_it) if best_it is not None else None)
            trial.set_user_attr("fold_scores", scores)
            trial.set_user_attr("best_iterations", iterations)
            trial.report(float(np.mean(scores)), step)
            if trial.should_prune():
                raise optuna.TrialPruned()
        return float(np.mean(scores))

    finished = 0

    def callback(study: optuna.Study, t: optuna.trial.FrozenTrial) -> None:
        nonlocal finished
        finished += 1
        if on_trial is not None:
            value = t.value if t.state == optuna.trial.TrialState.COMPLETE else None
            on_trial(t.number, dict(t.params), value, list(t.user_attrs.get("fold_scores", [])),
                     t.state.name)

    with _optuna_quiet(verbose):
        study = open_study(settings, storage=storage, study_name=study_name, seed=seed)
        study.optimize(
            objective,
            n_trials=n_trials if n_trials is not None else settings.n_trials,
            timeout=timeout if timeout is not None else settings.timeout_s,
            callbacks=[callback],
        )
    complete = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
    if not complete:
        raise ChurnkitError(
            f"tuning: no trial of study '{study.study_name}' completed "
            f"({len(study.trials)} pruned or failed); relax the pruner or add trials"
        )
    best = study.best_trial
    return TuningResult(
        best_params=dict(best.params), best_value=float(best.value),
        n_trials_done=finished, study=study,
        best_attrs=dict(best.user_attrs),
    )

