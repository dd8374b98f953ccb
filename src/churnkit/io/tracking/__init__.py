"""MLflow at the edge: the only package that imports mlflow.

``store`` selects and checks the tracking store; ``runs`` logs parameters, metrics,
artefacts and models into runs; ``registry`` registers versions, resolves aliases, loads
pinned models and records promotion decisions. Everything else hands these plain Python
objects and gets plain objects back, so nothing depends on MLflow's API, which changes
between major versions. The promotion *policy* is pure and lives in ``training.promotion``.

Importing this package costs nothing: MLflow takes seconds to import, and every command
and flow imports ``tracking`` whether or not it reaches the store (``churnkit ingest``,
``churnkit --help``). The first use of a name (``tracking.open_store(...)``) imports its
submodule, and with it MLflow.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the same names, eagerly, for type checkers and the import graph
    from churnkit.io.tracking.abandoned import mark_abandoned
    from churnkit.io.tracking.artifacts import download_artifact, list_artifacts, log_artifact_to
    from churnkit.io.tracking.monitoring import monitoring_run, set_version_tags, version_model_id
    from churnkit.io.tracking.registry import (
        CHALLENGER,
        CHAMPION,
        LoadedModel,
        aliases,
        load_model,
        promotion_history,
        record_decision,
        register,
        registered_model,
        resolve_version,
        set_champion,
        version_created,
        version_metrics,
        version_tags,
        versions,
    )
    from churnkit.io.tracking.runs import (
        MAX_PARAM_VALUE,
        RunInfo,
        child_run,
        experiment_id,
        get_run,
        log_artifact,
        log_dataset_info,
        log_figure,
        log_json,
        log_metrics,
        log_model,
        log_params,
        scoring_run,
        set_tags,
        training_run,
    )
    from churnkit.io.tracking.store import (
        artifact_root_for,
        client,
        current_uri,
        default_tracking_uri,
        model_name,
        open_store,
        redact,
        tracking_uri,
        use_store,
    )

_HOME: dict[str, str] = {  # each public name -> the submodule that defines it
    "mark_abandoned": "abandoned",
    "download_artifact": "artifacts",
    "list_artifacts": "artifacts",
    "log_artifact_to": "artifacts",
    "monitoring_run": "monitoring",
    "set_version_tags": "monitoring",
    "version_model_id": "monitoring",
    "CHALLENGER": "registry",
    "CHAMPION": "registry",
    "LoadedModel": "registry",
    "aliases": "registry",
    "load_model": "registry",
    "promotion_history": "registry",
    "record_decision": "registry",
    "register": "registry",
    "registered_model": "registry",
    "resolve_version": "registry",
    "set_champion": "registry",
    "version_created": "registry",
    "version_metrics": "registry",
    "version_tags": "registry",
    "versions": "registry",
    "MAX_PARAM_VALUE": "runs",
    "RunInfo": "runs",
    "child_run": "runs",
    "experiment_id": "runs",
    "get_run": "runs",
    "log_artifact": "runs",
    "log_dataset_info": "runs",
    "log_figure": "runs",
    "log_json": "runs",
    "log_metrics": "runs",
    "log_model": "runs",
    "log_params": "runs",
    "scoring_run": "runs",
    "set_tags": "runs",
    "training_run": "runs",
    "artifact_root_for": "store",
    "client": "store",
    "current_uri": "store",
    "default_tracking_uri": "store",
    "model_name": "store",
    "open_store": "store",
    "redact": "store",
    "tracking_uri": "store",
    "use_store": "store",
}


def __getattr__(name: str) -> Any:
    """Import ``name``'s submodule on first use and keep the name here (PEP 562)."""
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))


__all__ = [
    "CHALLENGER",
    "CHAMPION",
    "MAX_PARAM_VALUE",
    "LoadedModel",
    "RunInfo",
    "aliases",
    "artifact_root_for",
    "child_run",
    "client",
    "current_uri",
    "default_tracking_uri",
    "download_artifact",
    "experiment_id",
    "get_run",
    "list_artifacts",
    "load_model",
    "log_artifact",
    "log_artifact_to",
    "log_dataset_info",
    "log_figure",
    "log_json",
    "log_metrics",
    "log_model",
    "log_params",
    "mark_abandoned",
    "model_name",
    "monitoring_run",
    "open_store",
    "promotion_history",
    "record_decision",
    "redact",
    "register",
    "registered_model",
    "resolve_version",
    "scoring_run",
    "set_champion",
    "set_tags",
    "set_version_tags",
    "tracking_uri",
    "training_run",
    "use_store",
    "version_created",
    "version_metrics",
    "version_model_id",
    "version_tags",
    "versions",
]
