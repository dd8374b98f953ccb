"""MLflow at the edge: the only package that imports mlflow.

``store`` selects and checks the tracking store; ``runs`` logs parameters, metrics,
artefacts and models into runs; ``registry`` registers versions, resolves aliases, loads
pinned models and records promotion decisions. Everything else hands these plain Python
objects and gets plain objects back, so nothing depends on MLflow's API, which changes
between major versions. The promotion *policy* is pure and lives in ``training.promotion``.
"""

from churnkit.io.tracking.abandoned import mark_abandoned
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
    "experiment_id",
    "get_run",
    "load_model",
    "log_dataset_info",
    "log_figure",
    "log_json",
    "log_metrics",
    "log_model",
    "log_params",
    "mark_abandoned",
    "model_name",
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
    "tracking_uri",
    "training_run",
    "use_store",
    "version_metrics",
    "version_tags",
    "versions",
]
