"""Artefacts of a finished run: read one back, add one later, list them.

A report made after training (the model card) belongs to the version's training run: it is
logged there by run id, not into an active run.
"""

from __future__ import annotations

from pathlib import Path

from mlflow.exceptions import MlflowException

from churnkit.errors import ChurnkitError
from churnkit.io.tracking import store


def download_artifact(run_id: str, path: str, dst: Path) -> Path | None:
    """Run ``run_id``'s artefact ``path`` copied into the folder ``dst``; None when the run
    has no such artefact (or its store cannot be read)."""
    dst.mkdir(parents=True, exist_ok=True)
    try:
        local = store.client().download_artifacts(run_id, path, str(dst))
    except (MlflowException, OSError):
        return None
    found = Path(local)
    return found if found.exists() else None


def log_artifact_to(run_id: str, local: Path, artifact_path: str | None = None) -> None:
    """Add the file ``local`` to the (possibly finished) run ``run_id`` under ``artifact_path``."""
    try:
        store.client().log_artifact(run_id, str(local), artifact_path)
    except MlflowException as err:
        raise ChurnkitError(f"could not log {local.name} to run {run_id}: {store.one_line(err)}") from None


def list_artifacts(run_id: str, path: str | None = None) -> list[str]:
    """The artefact paths directly under ``path`` of a run (folders end without a slash)."""
    return [f.path for f in store.client().list_artifacts(run_id, path)]
