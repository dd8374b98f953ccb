"""MLflow at the edge: store resolution, runs, logged models, the registry and promotion.

This is the only churnkit module that imports mlflow. Everything else hands it plain
Python objects (dicts, estimators, DataFrames) and gets plain objects back, so the rest of
the package never depends on MLflow's API, which changes between major versions.

Conventions (see ARCHITECTURE.md, "Models and registry"):

- one experiment per problem, ``churnkit-<problem>``; one registered model of the same name;
- a freshly registered version gets alias ``challenger``; ``champion`` moves only through
  :func:`promote` / :func:`rollback`, which record who, when, from, to and why as tags;
- models are logged with the ``mlflow.sklearn`` flavour (cloudpickle) so loading gives back
  the estimator itself (``predict_proba`` included), with a float64 signature and the
  feature manifest as ``feature_manifest.json`` inside the model folder;
- consumers load a version pinned once (:func:`load_model`), never ``@champion`` lazily.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import json
import logging
import math
import os
import tempfile
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import unquote, urlparse

import mlflow
import mlflow.sklearn
from mlflow import MlflowClient
from mlflow.entities import Run
from mlflow.exceptions import MlflowException
from mlflow.models import infer_signature

from churnkit.errors import ChurnkitError

log = logging.getLogger(__name__)

Direction = Literal["maximize", "minimize"]

CHAMPION = "champion"
CHALLENGER = "challenger"
MANIFEST_FILE = "feature_manifest.json"
HISTORY_PREFIX = "churnkit.history."

# MLflow's own limits (mlflow.utils.validation); copied so a wrong value fails here, early.
MAX_PARAM_VALUE = 6000
MAX_KEY = 250
MAX_BATCH = 100
MAX_TAG_VALUE = 5000  # registry tags allow more on some stores; keep entries portable

_PROBE_TIMEOUT_S = "5"
_PROBE_RETRIES = "0"

# --------------------------------------------------------------------------- quiet mlflow

_NOISE = (
    "Creating initial MLflow database tables",
    "Updating database tables",
    "Saving scikit-learn models in the pickle or cloudpickle format",
    "Context impl SQLiteImpl",
    "Will assume non-transactional DDL",
    "for model version to finish creation",
)


class _DropNoise(logging.Filter):
    """Drops MLflow's routine chatter (schema creation, pickle advice); keeps real warnings."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        return not any(n in msg for n in _NOISE)


def _quiet_mlflow() -> None:
    noise = _DropNoise()
    for name in ("mlflow", "mlflow.store.db.utils", "mlflow.sklearn", "alembic"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropNoise) for f in logger.filters):
            logger.addFilter(noise)
    for handler in logging.getLogger("mlflow").handlers:
        if not any(isinstance(f, _DropNoise) for f in handler.filters):
            handler.addFilter(noise)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")


_quiet_mlflow()


@contextlib.contextmanager
def _mlflow_warnings() -> Iterator[None]:
    """Hide deprecation warnings raised inside MLflow's own code (not ours to fix)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*``noload`` loader strategy is deprecated")
        warnings.filterwarnings("ignore", message=r"Operation with range is deprecated")
        yield


# --------------------------------------------------------------------------- the store


def default_tracking_uri(workspace: Path) -> str:
    return f"sqlite:///{Path(workspace).resolve() / 'mlflow.db'}"


def tracking_uri(
    workspace: Path, configured: str | None = None, override: str | None = None
) -> str:
    """Which store to use: CLI ``--tracking-uri`` > ``MLFLOW_TRACKING_URI`` > config > workspace."""
    for candidate in (override, os.environ.get("MLFLOW_TRACKING_URI"), configured):
        if candidate and candidate.strip():
            return candidate.strip()
    return default_tracking_uri(workspace)


def artifact_root_for(uri: str, workspace: Path | None) -> Path | None:
    """Where new experiments keep artefacts when MLflow would otherwise pick ``./mlruns``.

    A server decides for itself (None). A local SQLite store keeps them beside its file, so
    the store and its artefacts move together; other local backends use the workspace.
    """
    scheme = urlparse(uri).scheme
    if scheme in ("http", "https", "databricks", "databricks-uc", "uc"):
        return None
    if scheme == "sqlite":
        db = _sqlite_path(uri)
        if db is not None:
            return db.parent / "mlartifacts"
    if scheme in ("", "file"):
        return None  # a file store keeps artefacts inside its own folder
    return Path(workspace).resolve() / "mlartifacts" if workspace is not None else None


def _sqlite_path(uri: str) -> Path | None:
    path = unquote(uri[len("sqlite:///") :]) if uri.startswith("sqlite:///") else ""
    if not path or path == ":memory:":
        return None
    return Path(path).resolve()


@dataclass
class _State:
    uri: str | None = None
    artifact_root: Path | None = None
    parent_run_id: str | None = None
    experiments: dict[str, str] = field(default_factory=dict)


_state = _State()


def use_store(uri: str, artifact_root: Path | None = None) -> MlflowClient:
    """Point MLflow (fluent API and client) at ``uri`` and check that it answers.

    Fails fast with a one-line :class:`ChurnkitError` naming the URI: probing a dead server
    uses a short timeout and no retries, instead of MLflow's minutes of back-off.
    """
    _quiet_mlflow()
    if uri.startswith("sqlite:///"):
        db = _sqlite_path(uri)
        if db is not None and not db.parent.is_dir():
            raise ChurnkitError(f"MLflow store {uri}: folder {db.parent} does not exist")
    user_env = {k: os.environ.get(k) for k in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")}
    try:
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        # mlflow writes the URI into os.environ for subprocesses; the environment is the
        # user's input to tracking_uri(), so a store chosen here must not leak into it
        for key, value in user_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        with _short_http(), _mlflow_warnings():
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            client.search_experiments(max_results=1)
    except ChurnkitError:
        raise
    except Exception as err:  # noqa: BLE001 - any failure here means "store unusable"
        raise ChurnkitError(_store_error(uri, err)) from None
    if urlparse(uri).scheme in ("http", "https"):
        # Later calls may retry a little (a busy server), but not for minutes.
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "60")
    _state.uri = uri
    _state.artifact_root = artifact_root
    _state.experiments.clear()
    return client


def open_store(
    workspace: Path, configured: str | None = None, override: str | None = None
) -> MlflowClient:
    """Resolve the URI for a workspace and :func:`use_store` it (artefacts kept local)."""
    uri = tracking_uri(workspace, configured, override)
    if uri == default_tracking_uri(workspace):
        Path(workspace).mkdir(parents=True, exist_ok=True)
    return use_store(uri, artifact_root_for(uri, workspace))


@contextlib.contextmanager
def _short_http() -> Iterator[None]:
    keys = {
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": _PROBE_RETRIES,
        "MLFLOW_HTTP_REQUEST_TIMEOUT": _PROBE_TIMEOUT_S,
    }
    saved = {k: os.environ.get(k) for k in keys}
    os.environ.update(keys)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def redact(uri: str) -> str:
    """The URI without a password, for messages and logs."""
    parsed = urlparse(uri)
    if parsed.password:
        netloc = parsed.netloc.replace(f":{parsed.password}@", ":***@")
        return parsed._replace(netloc=netloc).geturl()
    return uri


def _store_error(uri: str, err: BaseException) -> str:
    """A one-line reason a store cannot be used, with the likely fix where there is one."""
    shown = redact(uri)
    text = str(getattr(err, "message", None) or err)
    if "NameResolutionError" in text or "Name or service not known" in text:
        return f"cannot reach MLflow tracking server {shown}: host not found"
    if "NewConnectionError" in text or "Connection refused" in text:
        return f"cannot reach MLflow tracking server {shown}: connection refused"
    if "ReadTimeout" in text or "timed out" in text:
        return f"cannot reach MLflow tracking server {shown}: no answer in {_PROBE_TIMEOUT_S} s"
    if "MLFLOW_ALLOW_FILE_STORE" in text:
        return (
            f"MLflow store {shown}: MLflow 3 no longer accepts file stores; use a database "
            "such as sqlite:///PATH/mlflow.db (or set MLFLOW_ALLOW_FILE_STORE=true)"
        )
    if "unsupported URI" in text:
        return f"MLflow store {shown}: unsupported URI scheme {urlparse(uri).scheme!r}"
    return f"cannot use MLflow tracking store {shown}: {_one_line(err).replace(uri, shown)}"


def _one_line(err: BaseException) -> str:
    text = str(getattr(err, "message", None) or err) or type(err).__name__
    first = " ".join(text.split())
    return first[:300] + ("..." if len(first) > 300 else "")


def _client() -> MlflowClient:
    if _state.uri is None:
        raise ChurnkitError("no MLflow store selected; call tracking.open_store(...) first")
    return MlflowClient(tracking_uri=_state.uri, registry_uri=_state.uri)


def current_uri() -> str | None:
    return _state.uri


# --------------------------------------------------------------------------- runs


def experiment_name(problem: str) -> str:
    return f"churnkit-{problem}"


def model_name(problem: str) -> str:
    return f"churnkit-{problem}"


def experiment_id(problem: str) -> str:
    """The problem's experiment, created on first use with artefacts in the local root."""
    name = experiment_name(problem)
    if name in _state.experiments:
        return _state.experiments[name]
    client = _client()
    exp = client.get_experiment_by_name(name)
    if exp is None:
        location = None
        if _state.artifact_root is not None:
            location = (_state.artifact_root / name).as_uri()
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
    _state.experiments[name] = exp_id
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
    all_tags = {"churnkit.problem": problem, "churnkit.kind": "training"}
    all_tags.update({k: str(v) for k, v in (tags or {}).items()})
    exp_id = experiment_id(problem)
    with mlflow.start_run(experiment_id=exp_id, run_name=run_name, tags=all_tags) as run:
        previous = _state.parent_run_id
        _state.parent_run_id = run.info.run_id
        try:
            yield RunInfo(run.info.run_id, exp_id, run.info.run_name)
        finally:
            _state.parent_run_id = previous


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
    parent = _state.parent_run_id
    active = mlflow.active_run()
    if active is not None and active.info.run_id != parent:
        parent = active.info.run_id
    if parent is None:
        raise ChurnkitError("child_run needs an enclosing training_run")
    exp_id = _client().get_run(parent).info.experiment_id
    str_tags = {k: str(v) for k, v in (tags or {}).items()}
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


def _param_value(value: Any) -> str:
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
    flat = {k[:MAX_KEY]: _param_value(v) for k, v in flatten(params, prefix).items()}
    items = list(flat.items())
    for i in range(0, len(items), MAX_BATCH):
        mlflow.log_params(dict(items[i : i + MAX_BATCH]))
    return flat


def log_metrics(metrics: Mapping[str, Any], prefix: str = "", step: int | None = None) -> list[str]:
    """Log finite numeric metrics; NaN/inf/None are skipped and listed in a tag.

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
        mlflow.log_metrics(dict(items[i : i + MAX_BATCH]), step=step)
    if skipped:
        log.info("metrics not logged (not finite numbers): %s", ", ".join(skipped))
        note = ", ".join(sorted(skipped))
        mlflow.set_tag("churnkit.skipped_metrics", note[:MAX_TAG_VALUE])
    return skipped


def _to_json(obj: Any) -> str:
    return json.dumps(obj, indent=2, sort_keys=False, default=_json_default)


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (dt.date, dt.datetime, Path)):
        return str(obj)
    if hasattr(obj, "model_dump"):  # pydantic
        return obj.model_dump(mode="json")
    if hasattr(obj, "tolist"):  # numpy scalars and arrays
        return obj.tolist()
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    return str(obj)


def log_json(obj: Any, artifact_file: str) -> None:
    """Any JSON-able object (dates, paths, numpy, pydantic allowed) as a run artefact."""
    mlflow.log_text(_to_json(obj), artifact_file)


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


# --------------------------------------------------------------------------- models


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
        with _mlflow_warnings():
            info = mlflow.sklearn.log_model(
                model,
                name=name,
                signature=signature,
                input_example=example,
                serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_CLOUDPICKLE,
                pip_requirements=_requirements(model),
            )
    except MlflowException as err:
        raise ChurnkitError(f"could not log model {name!r}: {_one_line(err)}") from None
    client = _client()
    if manifest is not None:
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / MANIFEST_FILE
            path.write_text(_to_json(manifest), encoding="utf-8")
            client.log_model_artifact(info.model_id, str(path))
    return LoggedModelRef(run_id, name, info.model_id, info.model_uri)


def _logged_model_id(run_id: str, name: str) -> str:
    client = _client()
    run = client.get_run(run_id)
    found = client.search_logged_models(
        experiment_ids=[run.info.experiment_id],
        filter_string=f"name = '{name}' AND source_run_id = '{run_id}'",
    )
    if not found:
        raise ChurnkitError(f"run {run_id} has no logged model named {name!r}")
    return max(found, key=lambda m: m.creation_timestamp).model_id


def register(
    run_id: str,
    problem: str,
    name: str = "model",
    metrics: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> int:
    """Register the run's logged model as a new version of ``churnkit-<problem>``.

    The new version gets alias ``challenger`` and its test metrics as ``metric.<name>`` tags,
    so ``promote`` and the UI can show them without opening the run.
    """
    client = _client()
    registered = model_name(problem)
    model_id = _logged_model_id(run_id, name)
    try:
        client.get_registered_model(registered)
    except MlflowException:
        client.create_registered_model(
            registered,
            tags={"churnkit.problem": problem},
            description=f"churnkit model for problem {problem}",
        )
    version_tags = {"churnkit.problem": problem, "churnkit.registered_by": _user()}
    version_tags.update({k: str(v)[:MAX_TAG_VALUE] for k, v in (tags or {}).items()})
    for key, value in flatten(metrics or {}).items():
        version_tags[f"metric.{key}"] = _metric_text(value)
    mv = client.create_model_version(
        registered,
        source=f"models:/{model_id}",
        run_id=run_id,
        tags=version_tags,
        model_id=model_id,
    )
    client.set_registered_model_alias(registered, CHALLENGER, mv.version)
    return int(mv.version)


def _metric_text(value: Any) -> str:
    try:
        return repr(float(value))
    except (TypeError, ValueError):
        return str(value)


def _user() -> str:
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"


# --------------------------------------------------------------------------- loading


@dataclass(frozen=True)
class LoadedModel:
    """A model pinned to one registry version, with what is needed to use and explain it."""

    model: Any
    problem: str
    version: int
    run_id: str | None
    manifest: dict[str, Any] | None
    metrics: dict[str, float]
    aliases: tuple[str, ...] = ()

    @property
    def uri(self) -> str:
        return f"models:/{model_name(self.problem)}/{self.version}"


def _registered(problem: str) -> Any:
    client = _client()
    try:
        return client.get_registered_model(model_name(problem))
    except MlflowException:
        raise ChurnkitError(
            f"no registered model {model_name(problem)} in {_state.uri}; "
            f"run churnkit train --problem {problem}"
        ) from None


def aliases(problem: str) -> dict[str, int]:
    """Alias -> version for the problem's registered model (empty if none registered)."""
    try:
        rm = _registered(problem)
    except ChurnkitError:
        return {}
    return {a: int(v) for a, v in (rm.aliases or {}).items()}


def resolve_version(problem: str, alias: str | None = CHAMPION, version: int | None = None) -> int:
    """Alias or version number -> a version number that exists, with errors that say what to do."""
    rm = _registered(problem)
    if version is not None:
        known = _versions(problem)
        if int(version) not in known:
            listed = ", ".join(str(v) for v in sorted(known)) or "none"
            raise ChurnkitError(
                f"no version {version} of {model_name(problem)} (versions: {listed})"
            )
        return int(version)
    if alias is None:
        raise ChurnkitError("give an alias or a version")
    found = (rm.aliases or {}).get(alias)
    if found is None:
        if alias == CHAMPION:
            raise ChurnkitError(
                f"no champion for {problem}; run churnkit promote --problem {problem}"
            )
        raise ChurnkitError(f"no model version with alias {alias!r} for {problem}")
    return int(found)


def _versions(problem: str) -> list[int]:
    client = _client()
    found = client.search_model_versions(f"name = '{model_name(problem)}'")
    return [int(v.version) for v in found]


def _version_metrics(mv: Any) -> dict[str, float]:
    out = {}
    for key, value in (mv.tags or {}).items():
        if key.startswith("metric."):
            with contextlib.suppress(ValueError):
                out[key[len("metric.") :]] = float(value)
    return out


def version_tags(problem: str, number: int) -> dict[str, str]:
    """Tags of one registered version (what :func:`register` was given), without loading it."""
    return dict(_client().get_model_version(model_name(problem), str(number)).tags or {})


def load_model(
    problem: str, alias: str | None = CHAMPION, version: int | None = None
) -> LoadedModel:
    """Load one version natively (the estimator, not a pyfunc), pinned at call time.

    The alias is resolved to a number once and ``models:/churnkit-<problem>/<version>`` is
    loaded, so a promotion while a batch or the service is running changes nothing for it.
    """
    number = resolve_version(problem, alias, version)
    client = _client()
    mv = client.get_model_version(model_name(problem), str(number))
    uri = f"models:/{model_name(problem)}/{number}"
    with tempfile.TemporaryDirectory(prefix="churnkit-model-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
            model = mlflow.sklearn.load_model(local)
        except MlflowException as err:
            raise ChurnkitError(f"cannot load {uri}: {_one_line(err)}") from None
        manifest_path = Path(local) / MANIFEST_FILE
        manifest = (
            json.loads(manifest_path.read_text(encoding="utf-8"))
            if manifest_path.exists()
            else None
        )
    metrics = _version_metrics(mv)
    if not metrics and mv.run_id:
        with contextlib.suppress(MlflowException):
            metrics = dict(client.get_run(mv.run_id).data.metrics)
    return LoadedModel(
        model=model,
        problem=problem,
        version=number,
        run_id=mv.run_id,
        manifest=manifest,
        metrics=metrics,
        aliases=tuple(getattr(mv, "aliases", ()) or ()),
    )


# --------------------------------------------------------------------------- promotion


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str
    table: list[dict[str, Any]]
    """One row per metric: metric, challenger, champion, delta (challenger - champion)."""

    def as_text(self) -> str:
        lines = [f"{'metric':<24}{'challenger':>14}{'champion':>14}{'delta':>12}"]
        for row in self.table:
            lines.append(
                f"{row['metric']:<24}{_fmt(row['challenger']):>14}"
                f"{_fmt(row['champion']):>14}{_fmt(row['delta']):>12}"
            )
        lines.append(("PROMOTE: " if self.promote else "KEEP CHAMPION: ") + self.reason)
        return "\n".join(lines)


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.5g}"


def _finite(metrics: Mapping[str, Any] | None, key: str) -> float | None:
    if not metrics or key not in metrics:
        return None
    try:
        value = float(metrics[key])
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def comparison_table(
    challenger: Mapping[str, Any], champion: Mapping[str, Any] | None
) -> list[dict[str, Any]]:
    keys = list(dict.fromkeys([*challenger, *(champion or {})]))
    rows = []
    for key in keys:
        a, b = _finite(challenger, key), _finite(champion, key)
        delta = a - b if a is not None and b is not None else None
        rows.append({"metric": key, "challenger": a, "champion": b, "delta": delta})
    return rows


def decide_promotion(
    challenger_metrics: Mapping[str, Any],
    champion_metrics: Mapping[str, Any] | None,
    metric: str,
    direction: Direction,
    min_delta: float = 0.0,
    force: bool = False,
) -> Decision:
    """Does the challenger replace the champion? Pure: no MLflow, no I/O.

    It must beat the champion on ``metric`` by more than ``min_delta`` in ``direction``;
    a tie keeps the champion (no churn in production for nothing). With no champion the
    challenger wins if its metric is a finite number. ``force`` always promotes, and the
    reason says it was forced and what the comparison would have said.
    """
    if direction not in ("maximize", "minimize"):
        raise ValueError(f"direction must be 'maximize' or 'minimize', not {direction!r}")
    if min_delta < 0:
        raise ValueError("min_delta must be >= 0")
    table = comparison_table(challenger_metrics, champion_metrics)
    promote, reason = _compare(challenger_metrics, champion_metrics, metric, direction, min_delta)
    if force:
        return Decision(True, f"forced ({reason})", table)
    return Decision(promote, reason, table)


def _compare(
    challenger: Mapping[str, Any],
    champion: Mapping[str, Any] | None,
    metric: str,
    direction: Direction,
    min_delta: float,
) -> tuple[bool, str]:
    new = _finite(challenger, metric)
    if new is None:
        return False, f"challenger has no finite {metric}"
    if champion is None:
        return True, f"no champion yet; challenger {metric}={new:.5g}"
    old = _finite(champion, metric)
    if old is None:
        return False, f"champion has no comparable {metric}; use force to replace it"
    gain = new - old if direction == "maximize" else old - new
    better = "higher" if direction == "maximize" else "lower"
    if gain > min_delta:
        return True, f"{metric} {new:.5g} vs {old:.5g} ({better} is better, gain {gain:.3g})"
    need = f" by more than {min_delta:g}" if min_delta > 0 else ""
    return False, f"{metric} {new:.5g} vs {old:.5g}: does not beat the champion{need}"


@dataclass(frozen=True)
class PromotionResult:
    decision: Decision
    challenger: int
    previous_champion: int | None
    champion: int | None
    """The champion after the call."""
    run_id: str | None


Evaluate = Callable[[LoadedModel], Mapping[str, Any]]


def promote(
    problem: str,
    evaluate: Evaluate | Mapping[int, Mapping[str, Any]] | None = None,
    metric: str = "roc_auc",
    direction: Direction = "maximize",
    *,
    force: bool = False,
    version: int | None = None,
    min_delta: float = 0.0,
    user: str | None = None,
) -> PromotionResult:
    """Move ``champion`` to the challenger (alias, or ``version``) if it beats the champion.

    ``evaluate(loaded_model) -> metrics`` should score any model on the challenger's final
    test rows, so both are judged on the same data; it receives a :class:`LoadedModel`
    (estimator + manifest) to pick its feature columns. Alternatively pass precomputed
    metrics keyed by version number, or None to compare the metrics recorded at
    registration (only fair when both used the same cutoffs). Every decision, promoted or
    not, is recorded as tags and a small ``promotion`` run in the problem's experiment.
    """
    current = aliases(problem)
    if version is None and CHALLENGER not in current:
        _registered(problem)  # says "no registered model" when that is the problem
        raise ChurnkitError(
            f"no challenger for {problem}; run churnkit train --problem {problem} or give --version"
        )
    challenger = resolve_version(problem, CHALLENGER, version)
    champion = current.get(CHAMPION)
    if champion == challenger:
        decision = Decision(False, f"version {challenger} is already the champion", [])
        return PromotionResult(decision, challenger, champion, champion, None)

    chal_metrics = _metrics_for(problem, challenger, evaluate)
    champ_metrics: Mapping[str, Any] | None = None
    if champion is not None:
        try:
            champ_metrics = _metrics_for(problem, champion, evaluate)
        except ChurnkitError:
            raise
        except Exception as err:  # noqa: BLE001 - the old model may not fit the new rows
            log.warning("champion v%s could not be scored: %s", champion, _one_line(err))
            champ_metrics = {}
    decision = decide_promotion(chal_metrics, champ_metrics, metric, direction, min_delta, force)
    if decision.promote:
        _client().set_registered_model_alias(model_name(problem), CHAMPION, str(challenger))
    entry = {
        "action": "promote",
        "promoted": decision.promote,
        "from": champion,
        "to": challenger if decision.promote else champion,
        "challenger": challenger,
        "metric": metric,
        "direction": direction,
        "forced": force,
        "reason": decision.reason,
        "challenger_metrics": _finite_dict(chal_metrics),
        "champion_metrics": _finite_dict(champ_metrics) if champ_metrics is not None else None,
    }
    entry = _record(problem, entry, user)
    run_id = _log_decision_run(problem, entry, decision)
    new_champion = challenger if decision.promote else champion
    return PromotionResult(decision, challenger, champion, new_champion, run_id)


def rollback(problem: str, version: int | None = None, *, user: str | None = None) -> int:
    """Put ``champion`` back on the previous champion (or on ``version``); returns it."""
    current = aliases(problem).get(CHAMPION)
    if current is None:
        raise ChurnkitError(f"no champion for {problem}; nothing to roll back")
    if version is None:
        target = _previous_champion(problem, current)
        if target is None:
            raise ChurnkitError(
                f"no earlier champion recorded for {problem} (champion is v{current}); "
                "give the version to roll back to"
            )
    else:
        target = resolve_version(problem, None, version)
    if target == current:
        raise ChurnkitError(f"version {target} is already the champion of {problem}")
    _client().set_registered_model_alias(model_name(problem), CHAMPION, str(target))
    entry = {
        "action": "rollback",
        "promoted": True,
        "from": current,
        "to": target,
        "forced": True,
        "reason": f"rollback from v{current} to v{target}",
    }
    entry = _record(problem, entry, user)
    _log_decision_run(problem, entry, None)
    return target


def _previous_champion(problem: str, current: int) -> int | None:
    """Who the current champion replaced, skipping rollbacks so repeated rollbacks walk back."""
    for entry in reversed(promotion_history(problem)):
        if (
            entry.get("action") == "promote"
            and entry.get("promoted")
            and entry.get("to") == current
        ):
            return entry.get("from")
    return None


def _metrics_for(
    problem: str, number: int, evaluate: Evaluate | Mapping[int, Mapping[str, Any]] | None
) -> Mapping[str, Any]:
    if evaluate is None:
        mv = _client().get_model_version(model_name(problem), str(number))
        return _version_metrics(mv)
    if isinstance(evaluate, Mapping):
        found = evaluate.get(number, evaluate.get(str(number)))  # type: ignore[call-overload]
        if found is None:
            raise ChurnkitError(f"no metrics given for version {number} of {problem}")
        return found
    return evaluate(load_model(problem, version=number))


def _finite_dict(metrics: Mapping[str, Any] | None) -> dict[str, float]:
    out = {}
    for key in metrics or {}:
        value = _finite(metrics, key)
        if value is not None:
            out[key] = value
    return out


def _record(problem: str, entry: dict[str, Any], user: str | None) -> dict[str, Any]:
    """Append ``entry`` to the tag history of the registered model and the versions involved."""
    client = _client()
    registered = model_name(problem)
    now = dt.datetime.now(dt.UTC)
    entry = {"at": now.isoformat(timespec="seconds"), "by": user or _user(), **entry}
    key = f"{HISTORY_PREFIX}{time.time_ns():020d}"
    client.set_registered_model_tag(registered, key, _compact_json(entry))
    stamp = f"{entry['at']} by {entry['by']}"
    if entry["promoted"] and entry["to"] is not None and entry["to"] != entry["from"]:
        client.set_model_version_tag(registered, str(entry["to"]), "churnkit.champion_since", stamp)
        client.set_model_version_tag(
            registered, str(entry["to"]), "churnkit.replaced_version", str(entry["from"])
        )
        if entry["from"] is not None:
            client.set_model_version_tag(
                registered,
                str(entry["from"]),
                "churnkit.retired",
                f"{stamp}; replaced by v{entry['to']}",
            )
    subject = entry.get("challenger", entry["to"])
    if subject is not None:
        verdict = "promoted" if entry["promoted"] else "rejected"
        note = f"{entry['action']} {verdict} {stamp}: {entry['reason']}"
        client.set_model_version_tag(
            registered, str(subject), "churnkit.last_decision", note[:MAX_TAG_VALUE]
        )
    return entry


def _compact_json(entry: Mapping[str, Any]) -> str:
    text = json.dumps(entry, default=str, separators=(",", ":"))
    if len(text) <= MAX_TAG_VALUE:
        return text
    slim = {k: v for k, v in entry.items() if not k.endswith("_metrics")}
    metric = entry.get("metric")
    for side in ("challenger_metrics", "champion_metrics"):
        values = entry.get(side) or {}
        slim[side] = {metric: values.get(metric)} if metric else None
    return json.dumps(slim, default=str, separators=(",", ":"))[:MAX_TAG_VALUE]


def promotion_history(problem: str) -> list[dict[str, Any]]:
    """Every recorded promotion decision and rollback for the problem, oldest first."""
    try:
        rm = _registered(problem)
    except ChurnkitError:
        return []
    tags = rm.tags or {}
    out = []
    for key in sorted(k for k in tags if k.startswith(HISTORY_PREFIX)):
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(tags[key]))
    return out


def _log_decision_run(problem: str, entry: Mapping[str, Any], decision: Decision | None) -> str:
    """A small run per decision, so the experiment's run list shows every champion change."""
    tags = {
        "churnkit.problem": problem,
        "churnkit.kind": entry["action"],
        "churnkit.promoted": str(entry["promoted"]).lower(),
    }
    name = f"{entry['action']} v{entry.get('challenger', entry['to'])}"
    client = _client()
    run = client.create_run(experiment_id(problem), run_name=name, tags=tags)
    run_id = run.info.run_id
    try:
        params = {
            k: _param_value(entry.get(k))
            for k in ("action", "from", "to", "metric", "direction", "forced", "by", "at")
            if k in entry
        }
        params["reason"] = _param_value(entry["reason"])
        for key, value in params.items():
            client.log_param(run_id, key, value)
        for side in ("challenger_metrics", "champion_metrics"):
            for key, value in (entry.get(side) or {}).items():
                client.log_metric(run_id, f"{side.split('_')[0]}.{key}"[:MAX_KEY], value)
        payload = {"decision": dict(entry)}
        if decision is not None:
            payload["table"] = decision.table
        client.log_text(run_id, _to_json(payload), "promotion.json")
        if decision is not None:
            client.log_text(run_id, decision.as_text() + "\n", "promotion.txt")
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id


def get_run(run_id: str) -> Run:
    return _client().get_run(run_id)
