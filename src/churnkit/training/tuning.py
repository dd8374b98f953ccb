"""Optuna search over the backtest folds, for any estimator with ``fit(X, y, eval_set=)``.

A trial samples parameters, fits one estimator per fold (training cutoffs -> validation
cutoffs, see :mod:`churnkit.datasets.folds`) and is worth the mean fold score. After each fold the
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
from typing import Any, Protocol

import numpy as np
import optuna
import pandas as pd

from churnkit import metrics as ev
from churnkit.config import PrunerSettings, SearchParam, TuningSettings
from churnkit.contracts import KEYS, LABEL
from churnkit.datasets.folds import BacktestPlan, rows
from churnkit.errors import ChurnkitError

# --------------------------------------------------------------------------- scoring


class Estimator(Protocol):
    def fit(self, X: pd.DataFrame, y: Any, *, eval_set: Any = None) -> Any: ...


ScoreFn = Callable[[Any, pd.DataFrame, np.ndarray], float]
"""``score_fn(fitted_estimator, X_valid, y_valid) -> float``."""


def scorer(metric: str) -> ScoreFn:
    """Built-in score function for ``metric``: probabilities for classification metrics
    (``predict_proba[:, 1]``), ``predict`` for regression ones. The metrics are
    :mod:`churnkit.metrics`', so a tuned score and the reported one agree."""
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

