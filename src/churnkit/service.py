"""The prediction service: BentoML 1.4, JSON over HTTP, the champion models of three problems.

Start with ``churnkit serve`` or ``bentoml serve churnkit.service:ChurnService``; both read
the workspace and the MLflow store from the environment (see :class:`ServiceSettings`).

Models load in a background thread, so ``/healthz`` answers at once and ``/readyz`` turns
200 only when all three champions (pinned to versions), their manifests and the latest
score snapshot are in memory. ``POST /reload`` (or ``CHURNKIT_RELOAD_SECONDS``) loads a newly
promoted champion beside the old one and swaps one reference: a request reads the state
once, so it runs wholly on the old or wholly on the new models and none fails in between.
"""

from __future__ import annotations

import datetime as dt
import hmac
import logging
import os
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import bentoml
import numpy as np
import pandas as pd
from starlette.responses import JSONResponse

from churnkit.service_io import (
    MAX_BODY_BYTES,
    MAX_EVENTS,
    MAX_ROWS,
    Events,
    EventsResponse,
    Explanation,
    FeatureRows,
    Info,
    Scores,
    UserIds,
    Users,
    UsersResponse,
    feature_schema,
)

log = logging.getLogger("churnkit.service")

SCORE_COLUMNS = (
    "churn_probability", "purchase_probability", "predicted_ltv", "ltv_low", "ltv_high", "value_at_risk",
)
BATCH_LATENCY_MS = int(os.environ.get("CHURNKIT_BATCH_LATENCY_MS", "2000"))
"""Adaptive batching drops queued requests (503) whose wait would exceed this. 300 ms held 32
steady clients with no 503s (50 did not), but a ``/reload`` loads models in the same process
for ~0.8 s and stalled batches past 300 ms: 2 s keeps every request of a swap answered."""
OPEN_PATHS = frozenset({"/healthz", "/livez", "/readyz", "/metrics", "/docs.json", "/", "/docs"})
"""Paths that need no token (probes and the OpenAPI schema) and answer before models load."""
MODEL_PATHS = frozenset({"/score_features", "/score_users", "/score_events", "/explain"})


# --------------------------------------------------------------------------- settings


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service takes from its environment, so both start paths agree."""

    workspace: Path
    config: Path | None = None
    tracking_uri: str | None = None
    token: str | None = None
    reload_seconds: float = 0.0

    @classmethod
    def from_env(cls) -> ServiceSettings:
        from churnkit.config import load_churnkit_config

        config = os.environ.get("CHURNKIT_CONFIG") or None
        ws = os.environ.get("CHURNKIT_WORKSPACE")
        workspace = Path(ws) if ws else load_churnkit_config(Path(config) if config else None).workspace
        return cls(
            workspace=workspace.resolve(),
            config=Path(config) if config else None,
            tracking_uri=os.environ.get("CHURNKIT_TRACKING_URI") or None,
            token=os.environ.get("CHURNKIT_API_TOKEN") or None,
            reload_seconds=float(os.environ.get("CHURNKIT_RELOAD_SECONDS") or 0),
        )


# --------------------------------------------------------------------------- loaded state


@dataclass(frozen=True)
class Loaded:
    """One consistent set of models and snapshot; replaced whole, never changed in place."""

    scorer: Any
    versions: dict[str, int]
    problems: dict[str, str]
    features: list[str]
    snapshot: pd.DataFrame | None
    snapshot_path: Path | None
    snapshot_as_of: str | None
    loaded_at: str

    def key(self) -> tuple:
        return (tuple(sorted(self.versions.items())), str(self.snapshot_path))


def latest_snapshot(workspace: Path) -> Path | None:
    """``WORKSPACE/scores/scores_<date>.parquet`` with the latest date (ISO dates sort)."""
    found = sorted((Path(workspace) / "scores").glob("scores_*.parquet"))
    return found[-1] if found else None


def read_snapshot(path: Path | None) -> tuple[pd.DataFrame | None, str | None]:
    if path is None:
        return None, None
    df = pd.read_parquet(path)
    df["user_id"] = df["user_id"].astype(str)
    as_of = path.stem.removeprefix("scores_")
    return df.set_index("user_id", drop=False), as_of


def _json_value(v: Any) -> Any:
    """NaN and NaT become null; numpy scalars and timestamps become JSON types."""
    if v is None:
        return None
    if isinstance(v, float | np.floating):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer | np.bool_):
        return v.item()
    if isinstance(v, pd.Timestamp | dt.datetime | dt.date):
        return None if pd.isna(v) else v.isoformat()
    if isinstance(v, np.ndarray | list | tuple):
        return [_json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: _json_value(x) for k, x in v.items()}
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows; version columns stay whole numbers even after a reindex made them float."""
    rows = [{k: _json_value(v) for k, v in row.items()} for row in df.to_dict("records")]
    versions = [c for c in df.columns if str(c).endswith("_model_version")]
    for row in rows:
        for c in versions:
            if row.get(c) is not None:
                row[c] = int(row[c])
    return rows


class Holder:
    """The current :class:`Loaded` (or the load error) and how to replace it."""

    def __init__(self, settings: ServiceSettings):
        self.settings = settings
        self.state: Loaded | None = None
        self.error: str | None = None
        self.reloads = 0
        self._lock = threading.Lock()
        self.started = time.monotonic()

    def load(self) -> Loaded:
        from churnkit import service_engine as engine

        snapshot_path = latest_snapshot(self.settings.workspace)
        scorer = engine.load_scorer(self.settings, snapshot_path)
        snapshot, as_of = read_snapshot(snapshot_path)
        return Loaded(
            scorer=scorer,
            versions=engine.versions(scorer),
            problems=engine.problems(scorer),
            features=engine.feature_names(scorer),
            snapshot=snapshot,
            snapshot_path=snapshot_path,
            snapshot_as_of=as_of,
            loaded_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        )

    def changed(self) -> bool:
        """Whether a champion alias or the latest snapshot moved since the last load."""
        from churnkit import service_engine as engine

        state = self.state
        if state is None:
            return True
        return (
            engine.champion_versions(self.settings, state.problems) != state.versions
            or latest_snapshot(self.settings.workspace) != state.snapshot_path
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
            feature_schema.names = frozenset(new.features)
            self.state = new  # the swap: one reference assignment
            self.error = None
            self.reloads += 1
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


_holder: Holder | None = None
"""The process's holder, for the ASGI gate (it runs outside the service instance)."""


# --------------------------------------------------------------------------- the gate


def _error(status: int, message: str, loc: list[Any] | None = None) -> JSONResponse:
    """Errors in the same shape as BentoML's validation errors: ``error`` and ``detail``."""
    detail = [{"loc": loc or [], "msg": message, "type": "value_error"}]
    return JSONResponse({"error": message, "detail": detail}, status_code=status)


class Gate:
    """ASGI middleware: bearer token, body size limit, and 503 until the models are loaded.

    Runs before BentoML parses a body, so an oversized payload is never read into memory.
    """

    def __init__(self, app: Any, **_: Any):
        self.app = app
        self.token = os.environ.get("CHURNKIT_API_TOKEN") or None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        if path in OPEN_PATHS:
            return await self.app(scope, receive, send)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        if self.token is not None:
            auth = headers.get("authorization", "")
            given = auth[7:] if auth.lower().startswith("bearer ") else ""
            if not hmac.compare_digest(given.encode(), self.token.encode()):
                resp = _error(401, "missing or wrong bearer token (header Authorization: Bearer <token>)")
                resp.headers["WWW-Authenticate"] = "Bearer"
                return await resp(scope, receive, send)
        length = headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > MAX_BODY_BYTES:
            return await _error(413, f"body of {int(length)} bytes exceeds the limit of {MAX_BODY_BYTES}")(
                scope, receive, send
            )
        if path in MODEL_PATHS and (_holder is None or _holder.state is None):
            reason = _holder.error if _holder is not None and _holder.error else "models are still loading"
            return await _error(503, f"not ready: {reason}")(scope, receive, send)
        # JSON only: a body sent without a JSON content type (curl -d) is still read as JSON.
        scope = dict(scope)
        scope["headers"] = [(k, v) for k, v in scope.get("headers", []) if k.lower() != b"content-type"]
        scope["headers"].append((b"content-type", b"application/json"))
        return await self.app(scope, _limited(receive), send)


def _limited(receive: Any) -> Any:
    """A receive that stops a chunked body (no Content-Length) at the size limit."""
    seen = 0

    async def wrapped() -> dict:
        nonlocal seen
        message = await receive()
        if message.get("type") == "http.request":
            seen += len(message.get("body", b""))
            if seen > MAX_BODY_BYTES:
                raise ValueError(f"body exceeds the limit of {MAX_BODY_BYTES} bytes")
        return message

    return wrapped


# --------------------------------------------------------------------------- the service


@bentoml.service(
    name="churnkit",
    workers=int(os.environ.get("CHURNKIT_WORKERS", "1")),
    threads=int(os.environ.get("CHURNKIT_THREADS", "4")),
    traffic={"timeout": 120},
)
class ChurnService:
    """Scores, explanations and health of churnkit's champion models over HTTP."""

    def __init__(self) -> None:
        global _holder
        self.settings = ServiceSettings.from_env()
        self.holder = _holder = Holder(self.settings)
        self._engine_lock = threading.Lock()  # DuckDB connections are not shared across threads
        threading.Thread(target=self.holder.watch, name="churnkit-load", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.holder.state is not None

    # ------------------------------------------------------------------ scoring

    @bentoml.api(route="/score_features", batchable=True, max_batch_size=MAX_ROWS, max_latency_ms=BATCH_LATENCY_MS)
    def score_features(self, rows: FeatureRows) -> list[Scores]:
        """Score feature rows as a training set holds them (one per user; null = missing).

        Batchable: rows of concurrent requests are scored in one model call per problem.
        """
        from churnkit import service_engine as engine

        state = self._state()
        X = pd.DataFrame.from_records([r.features for r in rows], columns=state.features).astype("float64")
        scored = engine.score_features(state.scorer, X)
        out = []
        for r, s in zip(rows, scored.to_dict("records")):
            values = {k: _json_value(s[k]) for k in SCORE_COLUMNS}
            inside = {role: _json_value(s[f"{role}_in_population"]) for role in state.versions}
            out.append(Scores(user_id=r.user_id, in_population=inside, model_versions=state.versions, **values))
        return out

    @bentoml.api(route="/score_users")
    def score_users(self, user_ids: UserIds) -> UsersResponse:
        """Scores of known users from the latest snapshot; unknown ids get ``status: not_found``."""
        state = self._state()
        snap = state.snapshot
        if snap is None:
            return _error(404, "no score snapshot in the workspace; run churnkit score --as-of DATE", ["user_ids"])
        found = snap.reindex(user_ids)
        rows = records(found.drop(columns=["user_id"]))
        results = []
        for uid, row, ok in zip(user_ids, rows, found.index.isin(snap.index)):
            results.append({"user_id": uid, "status": "ok", **row} if ok else {"user_id": uid, "status": "not_found"})
        return UsersResponse(as_of=state.snapshot_as_of, snapshot=state.snapshot_path.name, results=results)

    @bentoml.api(route="/score_events")
    def score_events(self, as_of: dt.date, events: Events, users: Users | None = None) -> EventsResponse:
        """Features from raw recent events (the batch feature code) and their scores.

        Events may come in any order (they are sorted); one at or after the as-of cutoff is a
        400 naming it, as batch features never see such events.
        """
        from churnkit import service_engine as engine

        state = self._state()
        cutoff = engine.cutoff(as_of)
        for i, e in enumerate(events):
            if e.ts >= cutoff:
                return _error(
                    400, f"events[{i}].ts: {e.ts.isoformat()} is not before the as-of cutoff {cutoff.isoformat()}",
                    ["events", i, "ts"],
                )
        ev = pd.DataFrame([e.model_dump() for e in events]).sort_values("ts", kind="stable")
        us = None
        if users:
            try:
                us = pd.DataFrame([{"user_id": u.user_id, "signup_ts": u.signup_ts, **u.attributes()} for u in users])
            except ValueError as err:
                return _error(400, f"users: {err}", ["users"])
        with self._engine_lock:
            scored = engine.score_events(state.scorer, ev, us, as_of)
        return EventsResponse(as_of=as_of.isoformat(), model_versions=state.versions, results=records(scored))

    @bentoml.api(route="/explain")
    def explain(self, user_id: str, top: int = 3) -> Explanation:
        """Reason codes for one user at the snapshot date: what pushes each score up."""
        from churnkit import service_engine as engine

        state = self._state()
        if not 1 <= top <= 10:
            return _error(400, "top: must be between 1 and 10", ["top"])
        if state.snapshot is None:
            return _error(404, "no score snapshot in the workspace; run churnkit score --as-of DATE", ["user_id"])
        if user_id not in state.snapshot.index:
            return _error(404, f"user_id: {user_id!r} is not in the snapshot of {state.snapshot_as_of}", ["user_id"])
        with self._engine_lock:
            scores, reasons = engine.explain_user(state.scorer, self.settings, user_id, state.snapshot_as_of, top)
        return Explanation(user_id=user_id, as_of=state.snapshot_as_of, scores=scores, reasons=reasons)

    # ------------------------------------------------------------------ admin

    @bentoml.api(route="/info")
    def info(self) -> Info:
        """Model versions, snapshot date and size, limits; works before the models load."""
        s = self.holder.state
        return Info(
            ready=s is not None,
            error=self.holder.error,
            workspace=str(self.settings.workspace),
            tracking_uri=s.scorer.tracking_uri if s else self.settings.tracking_uri,
            model_versions=s.versions if s else {},
            problems=s.problems if s else {},
            snapshot=s.snapshot_path.name if s and s.snapshot_path else None,
            snapshot_as_of=s.snapshot_as_of if s else None,
            snapshot_rows=len(s.snapshot) if s and s.snapshot is not None else 0,
            features=len(s.features) if s else 0,
            loaded_at=s.loaded_at if s else None,
            reloads=self.holder.reloads,
            limits={"max_rows": MAX_ROWS, "max_events": MAX_EVENTS, "max_body_bytes": MAX_BODY_BYTES},
        )

    @bentoml.api(route="/reload")
    def reload(self) -> dict[str, Any]:
        """Load the current champions and latest snapshot, swap them in if anything changed."""
        try:
            changed = self.holder.reload(only_if_changed=True)
        except Exception:  # noqa: BLE001 - the old models keep serving
            return _error(409, f"reload failed, still serving the old models: {self.holder.error}")
        s = self.holder.state
        if s is None:
            return _error(503, f"not ready: {self.holder.error}")
        return {
            "changed": changed,
            "model_versions": s.versions,
            "snapshot": s.snapshot_path.name if s.snapshot_path else None,
        }

    def _state(self) -> Loaded:
        state = self.holder.state
        if state is None:  # the gate answers 503 first; this guards direct calls
            raise bentoml.exceptions.ServiceUnavailable("models are still loading")
        return state


ChurnService.add_asgi_middleware(Gate)
