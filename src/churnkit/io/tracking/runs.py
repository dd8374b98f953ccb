"""Runs and what goes into them: parameters, metrics, JSON, figures, datasets, models.

One experiment per problem (``churnkit-<problem>``); a training is a parent run with one
child run per Optuna trial; scoring runs go to ``churnkit-scoring``. Models are logged with
the ``mlflow.sklearn`` flavour (cloudpickle) so loading gives back the estimator itself,
with a float64 signature and the feature manifest as ``feature_manifest.json``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import math
import os
import socket
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from churnkit.errors import ChurnkitError
from churnkit.io.artifacts import to_json
from churnkit.io.tracking import store
from churnkit.io.tracking.store import MAX_TAG_VALUE, experiment_name

log = logging.getLogger(__name__)

MANIFEST_FILE = "feature_manifest.json"
OWNER_HOST, OWNER_PID = "churnkit.host", "churnkit.pid"


def owner_tags() -> dict[str, str]:
    """Which process a run belongs to, so a later one can tell a killed run from a live one."""
    return {OWNER_HOST: socket.gethostname(), OWNER_PID: str(os.getpid())}

# MLflow's own limits (mlflow.utils.validation); copied so a wrong value fails here, early.
MAX_PARAM_VALUE = 6000
MAX_KEY = 250
MAX_BATCH = 100


def experiment_id(problem: str) -> str:
    """The problem's experiment, created on first use with artefacts in the local root."""
    name = experiment_name(problem)
    if name in store.state.experiments:
        return store.state.experiments[name]
    client = store.client()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = None
        if store.state.artifact_root is not None:
            location = (store.state.artifact_root / name).as_uri()
        try:
            exp_id = client.create_experiment(name, artifact_location=location)
        except MlflowException:
            exp = client.get_experiment_by_name(name)  # created concurrently
            if exp is None:
                raise
            exp_id = exp.experiment_id
    else:
        if exp.lifecycle_stage == "deleted":
            client.restore_experiment(exp.experiment_id)
        exp_id = exp.experiment_id
    store.state.experiments[name] = exp_id
    return exp_id


@dataclass(frozen=True)
class RunInfo:
    run_id: str
    experiment_id: str
    name: str


@contextlib.contextmanager
def training_run(
    problem: str, run_name: str | None = None, tags: Mapping[str, Any] | None = None
) -> Iterator[RunInfo]:
    """The parent run of one training: config, data, metrics, model all land here."""
    all_tags = {"churnkit.problem": problem, "churnkit.kind": "training", **owner_tags()}
    all_tags.update({k: str(v) for k, v in (tags or {}).items()})
    exp_id = experiment_id(problem)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=all_tags) as run:
        previous = store.state.parent_run_id
        store.state.parent_run_id = run.info.run_id
        try:
            yield RunInfo(run.info.run_id, exp_id, run.info.run_name)
        finally:
            store.state.parent_run_id = previous


SCORING_EXPERIMENT = "scoring"


@contextlib.contextmanager
def scoring_run(run_name: str | None = None, tags: Mapping[str, Any] | None = None) -> Iterator[RunInfo]:
    """One batch scoring run in experiment ``churnkit-scoring`` (counts, distributions, versions)."""
    with training_run(SCORING_EXPERIMENT, run_name, {"churnkit.kind": "scoring", **(tags or {})}) as run:
        yield run


@contextlib.contextmanager
def child_run(name: str, tags: Mapping[str, Any] | None = None) -> Iterator[RunInfo]:
    """A nested run (one Optuna trial) under the current training run.

    Works from worker threads too: MLflow's active-run stack is per thread, so the parent
    is taken from the training run recorded here rather than from the thread's stack.
    """
    parent = store.state.parent_run_id
    active = mlflow.active_run()
    if active is not None and active.info.run_id != parent:
        parent = active.info.run_id
    if parent is None:
        raise ChurnkitError("child_run needs an enclosing training_run")
    exp_id = store.client().get_run(parent).info.experiment_id
    str_tags = {**owner_tags(), **{k: str(v) for k, v in (tags or {}).items()}}
    with mlflow.start_run(
        experiment_id=exp_id, run_name=name, parent_run_id=parent, nested=True, tags=str_tags
    ) as run:
        yield RunInfo(run.info.run_id, exp_id, run.info.run_name)


def _active_run_id() -> str:
    run = mlflow.active_run()
    if run is None:
        raise ChurnkitError("no active MLflow run; log inside tracking.training_run(...)")
    return run.info.run_id


def flatten(data: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested dicts to dotted keys (``model.num_leaves``), so params stay searchable."""
    out: dict[str, Any] = {}
    for key, value in data.items():
        full = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            out.update(flatten(value, full))
        else:
            out[full] = value
    return out


def param_value(value: Any) -> str:
    if isinstance(value, str):
        text = value
    elif isinstance(value, (list, tuple, set, dict)) or value is None:
        text = json.dumps(value if not isinstance(value, set) else sorted(value), default=str)
    else:
        text = str(value)
    if len(text) > MAX_PARAM_VALUE:
        text = text[: MAX_PARAM_VALUE - 3] + "..."
    return text


def log_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Flatten, stringify and truncate to MLflow's limits; returns what was logged."""
    flat = {k[:MAX_KEY]: param_value(v) for k, v in flatten(params, prefix).items()}
    items = list(flat.items())
    for i in range(0, len(items), MAX_BATCH):
        mlflow.log_params(dict(items[i : i + MAX_BATCH]))
    return flat


def log_metrics(metrics: Mapping[str, Any], prefix: str = "", step: int | None = None,
                model_id: str | None = None) -> list[str]:
    """Log finite numeric metrics; NaN/inf/None are skipped and listed in a tag. With
    ``model_id`` they are also linked to that logged model (MLflow 3).

    Returns the names skipped, so callers can report them.
    """
    good: dict[str, float] = {}
    skipped: list[str] = []
    for key, value in flatten(metrics, prefix).items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            skipped.append(key)
            continue
        if math.isfinite(number):
            good[key[:MAX_KEY]] = number
        else:
            skipped.append(key)
    items = list(good.items())
    for i in range(0, len(items), MAX_BATCH):
        mlflow.log_metrics(dict(items[i : i + MAX_BATCH]), step=step, model_id=model_id)
    if skipped:
        log.info("metrics not logged (not finite numbers): %s", ", ".join(skipped))
        note = ", ".join(sorted(skipped))
        mlflow.set_tag("churnkit.skipped_metrics", note[:MAX_TAG_VALUE])
    return skipped


def log_json(obj: Any, artifact_file: str) -> None:
    """Any JSON-able object (dates, paths, numpy, pydantic allowed) as a run artefact."""
    mlflow.log_text(to_json(obj), artifact_file)


def log_artifact(path: Path, artifact_path: str | None = None) -> None:
    """A file from disk as an artefact of the active run (under ``artifact_path``)."""
    mlflow.log_artifact(str(path), artifact_path)


def log_figure(figure: Any, artifact_file: str) -> None:
    """A matplotlib or plotly figure as an image/HTML artefact of the active run."""
    mlflow.log_figure(figure, artifact_file)


def set_tags(tags: Mapping[str, Any]) -> None:
    mlflow.set_tags({k: str(v)[:MAX_TAG_VALUE] for k, v in tags.items()})


def log_dataset_info(
    fingerprint: str | Mapping[str, Any],
    start: Any = None,
    end: Any = None,
    **extra: Any,
) -> None:
    """What the model was trained on: searchable tags plus ``data/dataset.json``.

    ``start``/``end`` are the first and last cutoff (or event time); ``extra`` may hold row
    counts, the number of cutoffs, positive rate, the path of the training set...
    """
    info = {"fingerprint": fingerprint, "start": start, "end": end, **extra}
    short = (
        fingerprint
        if isinstance(fingerprint, str)
        else json.dumps(fingerprint, sort_keys=True, default=str)
    )
    tags = {"churnkit.data.fingerprint": short[:MAX_TAG_VALUE]}
    if start is not None:
        tags["churnkit.data.start"] = str(start)
    if end is not None:
        tags["churnkit.data.end"] = str(end)
    for key, value in extra.items():
        if isinstance(value, (str, int, float, bool, dt.date)):
            tags[f"churnkit.data.{key}"] = str(value)
    set_tags(tags)
    log_json(info, "data/dataset.json")


@dataclass(frozen=True)
class LoggedModelRef:
    run_id: str
    name: str
    model_id: str
    uri: str


def as_float64(X: Any) -> Any:
    """Float64 copy of a feature frame: MLflow infers int64 from ints and then rejects floats."""
    import numpy as np
    import pandas as pd

    if isinstance(X, pd.DataFrame):
        bad = [
            c
            for c in X.columns
            if not pd.api.types.is_numeric_dtype(X[c].dtype)
            and not pd.api.types.is_bool_dtype(X[c].dtype)
        ]
        if bad:
            raise ChurnkitError(f"model input has non-numeric columns: {bad[:5]}")
        return X.astype("float64")
    return np.asarray(X, dtype="float64")


def _model_output(model: Any, X: Any) -> Any:
    for method in ("predict_proba", "predict"):
        fn = getattr(model, method, None)
        if callable(fn):
            with contextlib.suppress(Exception):
                return fn(X)
    return None


_DIST_OF = {"sklearn": "scikit-learn", "yaml": "pyyaml", "skops": "skops"}


def _requirements(model: Any) -> list[str]:
    """Pinned versions of what the pickle needs.

    Giving them skips MLflow's requirement inference, which imports the model in a
    subprocess and costs seconds per logged model.
    """
    from importlib.metadata import PackageNotFoundError, version

    roots = {"sklearn", "numpy", "pandas", "scipy", "cloudpickle"}
    parts = [model, *(s[-1] for s in getattr(model, "steps", None) or [])]
    for attr in ("estimator", "base_estimator", "model_", "booster_", "estimator_"):
        parts.append(getattr(model, attr, None))
    for part in parts:
        if part is not None:
            roots.add(type(part).__module__.split(".")[0])
    reqs = set()
    for root in roots - {"builtins", "__main__"}:
        dist = _DIST_OF.get(root, root)
        try:
            reqs.add(f"{dist}=={version(dist)}")
        except PackageNotFoundError:
            continue
    return sorted(reqs)


def log_model(
    model: Any,
    *,
    name: str = "model",
    manifest: Mapping[str, Any] | None = None,
    X_example: Any,
    n_example: int = 5,
) -> LoggedModelRef:
    """Log an sklearn-convention estimator into the active run, with a float64 signature.

    The estimator is cloudpickled (the ``sklearn`` flavour) so :func:`load_model` returns it
    intact. The manifest is written as ``feature_manifest.json`` inside the model folder so
    it always travels with the version it describes.
    """
    run_id = _active_run_id()
    example = as_float64(X_example)
    example = example[:n_example] if not hasattr(example, "head") else example.head(n_example)
    output = _model_output(model, example)
    signature = infer_signature(example, output)
    try:
        with store.mlflow_warnings():
            info = mlflow.sklearn.log_model(
                model,
                name=name,
                signature=signature,
                input_example=example,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pip_requirements=_requirements(model),
            )
    except MlflowException as err:
        raise ChurnkitError(f"could not log model {name!r}: {store.one_line(err)}") from None
    client = store.client()
    if manifest is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MANIFEST_FILE
            path.write_text(to_json(manifest), encoding="utf-8")
            client.log_model_artifact(info.model_id, str(path))
    return LoggedModelRef(run_id, name, info.model_id, info.model_uri)


def logged_model_id(run_id: str, name: str) -> str:
    client = store.client()
    run = client.get_run(run_id)
    found = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"name = '{name}' AND source_run_id = '{run_id}'",
    )
    if not found:
        raise ChurnkitError(f"run {run_id} has no logged model named {name!r}")
    return max(found, key=lambda m: m.creation_timestamp).model_id


def get_run(run_id: str) -> Run:
    return store.client().get_run(run_id)
