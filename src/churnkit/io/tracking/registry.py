"""The model registry: register versions, resolve aliases, load pinned models, record decisions.

Conventions: one registered model per problem (``churnkit-<problem>``); a freshly
registered version gets alias ``challenger``; ``champion`` moves only through
:func:`set_champion`, and every promotion or rollback is recorded (tags on the registered
model and the versions, and a small run) by :func:`record_decision`. Consumers load a
version pinned once (:func:`load_model`), never ``@champion`` lazily.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import mlflow
import mlflow.sklearn
from mlflow.exceptions import MlflowException

from churnkit.errors import ChurnkitError
from churnkit.io.artifacts import to_json
from churnkit.io.tracking import store
from churnkit.io.tracking.runs import (
    MANIFEST_FILE,
    MAX_KEY,
    experiment_id,
    flatten,
    logged_model_id,
    param_value,
)
from churnkit.io.tracking.store import MAX_TAG_VALUE, model_name, user

CHAMPION = "champion"
CHALLENGER = "challenger"
HISTORY_PREFIX = "churnkit.history."


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
    client = store.client()
    registered = model_name(problem)
    model_id = logged_model_id(run_id, name)
    try:
        client.get_registered_model(registered)
    except MlflowException:
        client.create_registered_model(
            registered,
            tags={"churnkit.problem": problem},
            description=f"churnkit model for problem {problem}",
        )
    version_tags = {"churnkit.problem": problem, "churnkit.registered_by": user()}
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


def registered_model(problem: str) -> Any:
    client = store.client()
    try:
        return client.get_registered_model(model_name(problem))
    except MlflowException:
        raise ChurnkitError(
            f"no registered model {model_name(problem)} in {store.state.uri}; "
            f"run churnkit train --problem {problem}"
        ) from None


def aliases(problem: str) -> dict[str, int]:
    """Alias -> version for the problem's registered model (empty if none registered)."""
    try:
        rm = registered_model(problem)
    except ChurnkitError:
        return {}
    return {a: int(v) for a, v in (rm.aliases or {}).items()}


def resolve_version(problem: str, alias: str | None = CHAMPION, version: int | None = None) -> int:
    """Alias or version number -> a version number that exists, with errors that say what to do."""
    rm = registered_model(problem)
    if version is not None:
        known = versions(problem)
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


def versions(problem: str) -> list[int]:
    """Every version number of the problem's registered model."""
    client = store.client()
    found = client.search_model_versions(f"name = '{model_name(problem)}'")
    return [int(v.version) for v in found]


def _version_metrics(mv: Any) -> dict[str, float]:
    out = {}
    for key, value in (mv.tags or {}).items():
        if key.startswith("metric."):
            with contextlib.suppress(ValueError):
                out[key[len("metric.") :]] = float(value)
    return out


def version_metrics(problem: str, number: int) -> dict[str, float]:
    """The test metrics recorded on a version at registration (``metric.*`` tags)."""
    return _version_metrics(store.client().get_model_version(model_name(problem), str(number)))


def version_tags(problem: str, number: int) -> dict[str, str]:
    """Tags of one registered version (what :func:`register` was given), without loading it."""
    return dict(store.client().get_model_version(model_name(problem), str(number)).tags or {})


def version_created(problem: str, number: int) -> dt.datetime:
    """When a version was registered (UTC)."""
    mv = store.client().get_model_version(model_name(problem), str(number))
    return dt.datetime.fromtimestamp(int(mv.creation_timestamp) / 1000, dt.UTC)


def load_model(
    problem: str, alias: str | None = CHAMPION, version: int | None = None
) -> LoadedModel:
    """Load one version natively (the estimator, not a pyfunc), pinned at call time.

    The alias is resolved to a number once and ``models:/churnkit-<problem>/<version>`` is
    loaded, so a promotion while a batch or the service is running changes nothing for it.
    """
    number = resolve_version(problem, alias, version)
    client = store.client()
    mv = client.get_model_version(model_name(problem), str(number))
    uri = f"models:/{model_name(problem)}/{number}"
    with tempfile.TemporaryDirectory(prefix="churnkit-model-") as tmp:
        try:
            local = mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=tmp)
            model = mlflow.sklearn.load_model(local)
        except MlflowException as err:
            raise ChurnkitError(f"cannot load {uri}: {store.one_line(err)}") from None
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


def set_champion(problem: str, version: int) -> None:
    store.client().set_registered_model_alias(model_name(problem), CHAMPION, str(version))


def record_decision(problem: str, entry: dict[str, Any], table: list[dict[str, Any]] | None = None,
                    text: str | None = None, by: str | None = None) -> tuple[dict[str, Any], str]:
    """Append a promotion or rollback to the history (tags) and log it as a run.

    Returns the entry as recorded (with who and when) and the run id.
    """
    entry = _record(problem, entry, by)
    return entry, _log_decision_run(problem, entry, table, text)


def _record(problem: str, entry: dict[str, Any], by: str | None) -> dict[str, Any]:
    """Append ``entry`` to the tag history of the registered model and the versions involved."""
    client = store.client()
    registered = model_name(problem)
    now = dt.datetime.now(dt.UTC)
    entry = {"at": now.isoformat(timespec="seconds"), "by": by or user(), **entry}
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
        rm = registered_model(problem)
    except ChurnkitError:
        return []
    tags = rm.tags or {}
    out = []
    for key in sorted(k for k in tags if k.startswith(HISTORY_PREFIX)):
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(tags[key]))
    return out


def _log_decision_run(
    problem: str, entry: Mapping[str, Any], table: list[dict[str, Any]] | None, text: str | None
) -> str:
    """A small run per decision, so the experiment's run list shows every champion change."""
    tags = {
        "churnkit.problem": problem,
        "churnkit.kind": entry["action"],
        "churnkit.promoted": str(entry["promoted"]).lower(),
    }
    name = f"{entry['action']} v{entry.get('challenger', entry['to'])}"
    client = store.client()
    run = client.create_run(experiment_id(problem), run_name=name, tags=tags)
    run_id = run.info.run_id
    try:
        params = {
            k: param_value(entry.get(k))
            for k in ("action", "from", "to", "metric", "direction", "forced", "by", "at")
            if k in entry
        }
        params["reason"] = param_value(entry["reason"])
        for key, value in params.items():
            client.log_param(run_id, key, value)
        for side in ("challenger_metrics", "champion_metrics"):
            for key, value in (entry.get(side) or {}).items():
                client.log_metric(run_id, f"{side.split('_')[0]}.{key}"[:MAX_KEY], value)
        payload: dict[str, Any] = {"decision": dict(entry)}
        if table is not None:
            payload["table"] = table
        client.log_text(run_id, to_json(payload), "promotion.json")
        if text is not None:
            client.log_text(run_id, text + "\n", "promotion.txt")
        client.set_terminated(run_id, "FINISHED")
    except Exception:
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id
