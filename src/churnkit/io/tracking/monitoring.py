"""Monitoring figures in MLflow, against the model version they judge.

One run per (problem, version, scoring run's as-of date) in the problem's experiment, tagged
``churnkit.kind=monitoring``; running ``churnkit monitor`` again (when outcomes arrive)
resumes that run instead of adding another. Its metrics are also linked to the version's
logged model (MLflow 3 ``model_id``), and the version carries the latest status as
``monitor.*`` tags, so the registry page says how the model is doing.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any

import mlflow
from mlflow.exceptions import MlflowException

from churnkit.io.tracking import store
from churnkit.io.tracking.runs import RunInfo, experiment_id, owner_tags
from churnkit.io.tracking.store import MAX_TAG_VALUE, model_name

KIND = "monitoring"


def version_model_id(problem: str, version: int) -> str | None:
    """The logged model behind a registered version (None for a store without one)."""
    try:
        mv = store.client().get_model_version(model_name(problem), str(version))
    except MlflowException:
        return None
    # the SQLite store does not hand model_id back; the version's source names it (models:/m-...)
    source = mv.source or ""
    return getattr(mv, "model_id", None) or (source.removeprefix("models:/") if source.startswith("models:/m-") else None)


@contextlib.contextmanager
def monitoring_run(problem: str, version: int, as_of: str) -> Iterator[RunInfo]:
    """The monitoring run of one model version on one scoring run, created or resumed."""
    exp = experiment_id(problem)
    tags = {"churnkit.problem": problem, "churnkit.kind": KIND, "churnkit.model_version": str(version),
            "churnkit.as_of": as_of}
    query = " and ".join(f"tags.`{k}` = '{v}'" for k, v in tags.items())
    found = store.client().search_runs([exp], query, max_results=1, order_by=["attributes.start_time DESC"])
    if found:
        with mlflow.start_run(run_id=found[0].info.run_id) as run:
            yield RunInfo(run.info.run_id, exp, run.info.run_name)
        return
    with mlflow.start_run(experiment_id=exp, run_name=f"monitor-v{version}-{as_of}",
                          tags={**tags, **owner_tags()}) as run:
        yield RunInfo(run.info.run_id, exp, run.info.run_name)


def set_version_tags(problem: str, version: int, tags: Mapping[str, Any]) -> None:
    """Tags on a registered version (values stringified and cut to MLflow's limit)."""
    client = store.client()
    for key, value in tags.items():
        client.set_model_version_tag(model_name(problem), str(version), key, str(value)[:MAX_TAG_VALUE])
