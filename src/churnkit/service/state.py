"""What one service process holds: its settings, the loaded models and snapshot, how to reload.

A :class:`Loaded` is one consistent set (models pinned to versions, their snapshot, one
DuckDB connection over the workspace for ``/explain``) and is replaced whole, never changed
in place: a request reads the reference once and runs wholly on the old or the new set.
The service instance owns its :class:`Holder`; the gate and the request schemas find it
through BentoML's current service (:func:`current_holder`), not through a module global.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bentoml
import pandas as pd
from bentoml.exceptions import BentoMLException

from churnkit.config import IngestSettings, load_churnkit_config
from churnkit.flows.project import Project
from churnkit.flows.score import champion_versions, load_scorer, stored_fit
from churnkit.io import tracking
from churnkit.io.workspace import Workspace, scores_as_of
from churnkit.scoring.scorer import Scorer

log = logging.getLogger("churnkit.service")


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def _from_env(cls: type, variables: dict[str, str]) -> Any:
    """``cls`` with each field from its environment variable (a whole number), else its default."""
    default = cls()
    return cls(**{name: _env_int(var, getattr(default, name)) for name, var in variables.items()})


@dataclass(frozen=True)
class Limits:
    """Request size limits; beyond them a request is a 400 (413 for the body) naming the field."""

    max_rows: int = 10_000
    """Rows (feature rows or user ids) per request."""
    max_events: int = 100_000
    """Events per /score_events request."""
    max_body_bytes: int = 32 * 1024 * 1024
    """Request bodies larger than this are refused before they are parsed."""

    @classmethod
    def from_env(cls) -> Limits:
        return _from_env(cls, {"max_rows": "CHURNKIT_MAX_ROWS", "max_events": "CHURNKIT_MAX_EVENTS",
                               "max_body_bytes": "CHURNKIT_MAX_BODY_BYTES"})


@dataclass(frozen=True)
class EventRules:
    """What a posted event must satisfy beyond its types: the ingest rules of the project."""

    min_ts: dt.date = IngestSettings().min_ts

    @property
    def earliest(self) -> dt.datetime:
        return dt.datetime.combine(self.min_ts, dt.time(), dt.UTC)


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service takes from its environment, so both start paths agree
    (``churnkit serve`` sets the variables; ``bentoml serve`` reads the same)."""

    workspace: Path
    config: Path | None = None
    tracking_uri: str | None = None
    token: str | None = None
    reload_seconds: float = 0.0
    limits: Limits = field(default_factory=Limits)

    @classmethod
    def from_env(cls) -> ServiceSettings:
        config = os.environ.get("CHURNKIT_CONFIG") or None
        ws = os.environ.get("CHURNKIT_WORKSPACE")
        workspace = Path(ws) if ws else load_churnkit_config(Path(config) if config else None).workspace
        return cls(
            workspace=workspace.resolve(),
            config=Path(config) if config else None,
            tracking_uri=os.environ.get("CHURNKIT_TRACKING_URI") or None,
            token=os.environ.get("CHURNKIT_API_TOKEN") or None,
            reload_seconds=float(os.environ.get("CHURNKIT_RELOAD_SECONDS") or 0),
            limits=Limits.from_env(),
        )

    def project(self) -> Project:
        return Project.at(self.workspace, load_churnkit_config(self.config), self.tracking_uri)


@dataclass(frozen=True)
class Deployment:
    """Process-level serving parameters BentoML needs when the service class is defined."""

    workers: int = 1
    threads: int = 4
    batch_latency_ms: int = 30_000
    """Budget for the wait of a request larger than ``inline_rows``: it is shed (503 with
    Retry-After) when the rows ahead of it in the worker pool times the measured seconds per
    row, shared by the threads, pass this (:class:`~churnkit.service.backlog.Backlog`). It
    bounds waiting, nothing is batched. With BentoML's adaptive batcher (which this replaced)
    at 2 s, 32 clients sending 1000-row batches on 2 cores saw 72 of ~150 requests shed (p99
    4.4 s); 30 s serves them all and still answers well inside the 120 s request timeout.
    Shedding remains for load beyond that."""

    inline_rows: int = 64
    """A batch of at most this many rows is scored on the event loop (~1 ms for one row; a
    worker thread costs a hop each way); larger ones in a worker thread."""

    @classmethod
    def from_env(cls) -> Deployment:
        return _from_env(cls, {"workers": "CHURNKIT_WORKERS", "threads": "CHURNKIT_THREADS",
                               "batch_latency_ms": "CHURNKIT_BATCH_LATENCY_MS",
                               "inline_rows": "CHURNKIT_INLINE_ROWS"})


@dataclass(frozen=True)
class Loaded:
    """One consistent set of models and snapshot; replaced whole, never changed in place."""

    scorer: Scorer
    tracking_uri: str | None
    snapshot: pd.DataFrame | None
    snapshot_path: Path | None
    loaded_at: str
    connection: Any
    """DuckDB over the workspace, opened once per load for /explain (not thread-safe: the
    holder's engine lock serialises its use)."""

    @property
    def versions(self) -> dict[str, int]:
        return {role: int(v["version"]) for role, v in self.scorer.versions.items()}

    @property
    def problems(self) -> dict[str, str]:
        return {role: str(v["problem"]) for role, v in self.scorer.versions.items()}

    @property
    def snapshot_as_of(self) -> str | None:
        return scores_as_of(self.snapshot_path) if self.snapshot_path else None

    def key(self) -> tuple:
        return (tuple(sorted(self.versions.items())), str(self.snapshot_path))


def read_snapshot(path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    df = pd.read_parquet(path)
    df["user_id"] = df["user_id"].astype(str)
    df = df.set_index("user_id", drop=False)
    df.index.get_indexer(df.index[:1])  # build the index's hash table now, not on a request
    return df


class Holder:
    """The current :class:`Loaded` (or the load error) and how to replace it."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.workspace = Workspace(settings.workspace)
        self.rules = EventRules(settings.project().config.ingest.min_ts)
        self.state: Loaded | None = None
        self.error: str | None = None
        self.reloads = 0
        self.started = time.monotonic()
        self.engine_lock = threading.Lock()  # DuckDB connections are not shared across threads
        self._lock = threading.Lock()
        self._features: frozenset[str] | None = None

    @property
    def feature_names(self) -> frozenset[str] | None:
        """The features the loaded models need (None until loaded): what a feature row must hold."""
        return self._features

    def load(self) -> Loaded:
        project = self.settings.project()
        snapshot_path = self.workspace.latest_scores()
        scorer = load_scorer(project, **stored_fit(snapshot_path))
        uri = tracking.current_uri()
        return Loaded(
            scorer=scorer,
            tracking_uri=tracking.redact(uri) if uri else None,
            snapshot=read_snapshot(snapshot_path),
            snapshot_path=snapshot_path,
            loaded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            connection=project.connect(),
        )

    def changed(self) -> bool:
        """Whether a champion alias or the latest snapshot moved since the last load."""
        state = self.state
        if state is None:
            return True
        return (
            champion_versions(self.settings.project(), state.problems) != state.versions
            or self.workspace.latest_scores() != state.snapshot_path
        )

    def reload(self, only_if_changed: bool = False) -> bool:
        """Load a new state beside the current one and swap it in; False if nothing changed."""
        with self._lock:
            if only_if_changed and not self.changed():
                return False
            try:
                new = self.load()
            except Exception as err:  # reported on /info and /readyz; the old state is kept
                self.error = f"{type(err).__name__}: {(str(err).splitlines() or [''])[0]}"
                log.error("churnkit service: load failed: %s", self.error)
                if self.state is None:
                    return False
                raise
            old = self.state
            changed = old is None or old.key() != new.key()
            self._features = frozenset(new.scorer.feature_names)
            self.state = new  # the swap: one reference assignment
            self.error = None
            self.reloads += 1
            del old
            settle_heap()
            log.info("churnkit service: loaded models %s, snapshot %s", new.versions, new.snapshot_path)
            return changed

    def watch(self) -> None:
        """Background: first load, then poll the champion aliases if asked to."""
        self.reload()
        period = self.settings.reload_seconds
        while period > 0:
            time.sleep(period)
            try:
                self.reload(only_if_changed=True)
            except Exception:  # keep serving the old models
                log.exception("churnkit service: periodic reload failed")


def settle_heap() -> None:
    """Collect once, then freeze what survives (models, snapshot, libraries) so that later
    collections skip it.

    Why: with the models loaded the process holds millions of objects, and a full garbage
    collection walked them all for 0.4-0.65 s (measured, 2 busy cores), stalling whatever
    request was running; a 1000-row request allocates enough to trigger collections often.
    Frozen objects are never collected, so a reload unfreezes first: the replaced models
    (and any cycles in them) are collected before the new set is frozen.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


_get_current_service = bentoml.get_current_service
"""Looked up once: ``bentoml.<name>`` resolves through the package's lazy ``__getattr__``
on every access, and the per-row feature-name check of a 1000-row request asked 1000 times
(profiled: ~30% of validating the rows)."""


def current_service() -> Any:
    """This process's running service instance, None before it exists."""
    try:
        return _get_current_service()
    except BentoMLException:
        return None


def current_holder() -> Holder | None:
    """This process's holder: the running service instance's, None before it exists."""
    return getattr(current_service(), "holder", None)
