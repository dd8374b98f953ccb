"""Which MLflow store, and a quiet, fast-failing connection to it.

The only place that points MLflow at a store. MLflow's fluent API keeps its store in
process-wide state, so the selection here is process-wide too: ``open_store`` once per
command (or service load), then :mod:`runs` and :mod:`registry` use it.
"""

from __future__ import annotations

import contextlib
import getpass
import logging
import os
import sqlite3
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

import mlflow
from mlflow import MlflowClient

from churnkit.errors import ChurnkitError
from churnkit.io.workspace import Workspace

log = logging.getLogger(__name__)

_PROBE_TIMEOUT_S = "5"
_PROBE_RETRIES = "0"
MAX_TAG_VALUE = 5000  # registry tags allow more on some stores; keep entries portable


def experiment_name(problem: str) -> str:
    return f"churnkit-{problem}"


def model_name(problem: str) -> str:
    return f"churnkit-{problem}"


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



@contextlib.contextmanager
def mlflow_warnings() -> Iterator[None]:
    """Hide deprecation warnings raised inside MLflow's own code (not ours to fix)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*``noload`` loader strategy is deprecated")
        warnings.filterwarnings("ignore", message=r"Operation with range is deprecated")
        yield


# --------------------------------------------------------------------------- the store


def default_tracking_uri(workspace: Path) -> str:
    return f"sqlite:///{Workspace(workspace).mlflow_db.resolve()}"


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


state = _State()


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
        with _short_http(), mlflow_warnings():
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
    if state.uri != uri:
        _forget_artifact_locations()
    state.uri = uri
    state.artifact_root = artifact_root
    state.experiments.clear()
    return client


def _forget_artifact_locations() -> None:
    """Drop MLflow's per-run cache of artefact locations (keyed by run id alone): after a
    switch to another store, a copied workspace's runs share ids with the original's, and
    the cache would send the copy's artefacts into the original's folder."""
    from mlflow.tracking._tracking_service import utils as tracking_utils  # private: guarded

    cache = getattr(tracking_utils, "_artifact_repos_cache", None)
    if cache is not None and hasattr(cache, "clear"):
        cache.clear()


def open_store(
    workspace: Path, configured: str | None = None, override: str | None = None
) -> MlflowClient:
    """Resolve the URI for a workspace and :func:`use_store` it (artefacts kept local).

    The workspace's own store is relocated first if the workspace was copied or moved.
    """
    uri = tracking_uri(workspace, configured, override)
    if uri == default_tracking_uri(workspace):
        Path(workspace).mkdir(parents=True, exist_ok=True)
        relocate(Workspace(workspace).mlflow_db)
    return use_store(uri, artifact_root_for(uri, workspace))


ARTIFACT_COLUMNS = (
    ("experiments", "artifact_location"),
    ("runs", "artifact_uri"),
    ("logged_models", "artifact_location"),
    ("model_versions", "storage_location"),
    ("model_versions", "source"),
)
"""Where MLflow's SQL store records an absolute artefact location."""
ARTIFACTS = "mlartifacts"


def relocate(db: Path) -> int:
    """Point the artefact locations a SQLite store recorded under another folder (the one it
    was copied or moved from) at the artefacts beside it now; returns the rows changed.

    MLflow stores absolute ``file://`` URIs, so a copied workspace would read, and train
    into, the original's artefacts, and fail once the original is gone. Values that name the
    old workspace in tags and parameters (a training set's path) follow too.
    """
    if not db.exists():
        return 0
    here = (db.parent.resolve() / ARTIFACTS).as_uri()
    changed = 0
    with contextlib.closing(sqlite3.connect(db, timeout=30)) as con:
        try:
            found = con.execute("SELECT artifact_location FROM experiments WHERE instr(artifact_location, ?) > 0",
                                (f"/{ARTIFACTS}/",)).fetchall()
        except sqlite3.OperationalError:  # not (yet) an MLflow store
            return 0
        found = [(loc,) for (loc,) in found if loc.startswith("file://")]
        olds = {loc[: loc.index(f"/{ARTIFACTS}/") + len(ARTIFACTS) + 1] for (loc,) in found} - {here}
        for old in olds:
            for table, column in ARTIFACT_COLUMNS:
                changed += _replace_prefix(con, table, column, old, here)
            old_root = unquote(urlparse(old).path).removesuffix(f"/{ARTIFACTS}")
            new_root = str(db.parent.resolve())
            for table in ("tags", "params"):
                changed += _replace_prefix(con, table, "value", old_root, new_root)
        con.commit()
    if changed:
        log.info("MLflow store %s: %d artefact locations moved to %s", db, changed, here)
    return changed


def _replace_prefix(con: sqlite3.Connection, table: str, column: str, old: str, new: str) -> int:
    """``old/...`` -> ``new/...`` in one column (an exact, case-sensitive prefix match)."""
    try:
        cur = con.execute(
            f"UPDATE {table} SET {column} = ? || substr({column}, ?) WHERE substr({column}, 1, ?) = ?",
            (new, len(old) + 1, len(old) + 1, old + "/"),
        )
    except sqlite3.OperationalError:  # a table or column this MLflow version does not have
        return 0
    return cur.rowcount


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
    return f"cannot use MLflow tracking store {shown}: {one_line(err).replace(uri, shown)}"


def one_line(err: BaseException) -> str:
    """An exception as one short line, for messages."""
    text = str(getattr(err, "message", None) or err) or type(err).__name__
    first = " ".join(text.split())
    return first[:300] + ("..." if len(first) > 300 else "")


def client() -> MlflowClient:
    if state.uri is None:
        raise ChurnkitError("no MLflow store selected; call tracking.open_store(...) first")
    return MlflowClient(tracking_uri=state.uri, registry_uri=state.uri)


def current_uri() -> str | None:
    return state.uri


def user() -> str:
    """Who is acting, for decision records."""
    try:
        return getpass.getuser()
    except Exception:  # noqa: BLE001 - no login name in some containers
        return "unknown"
