"""The prediction service: BentoML 1.4, JSON over HTTP, the champion models of the configured roles.

This file only wires: settings and loaded models live in :mod:`state`, checks before
parsing in :mod:`gate`, request and response models in :mod:`schemas`, the computations
in :mod:`engine`. Start with ``churnkit serve`` or
``bentoml serve churnkit.service.app:ChurnService``; both read the workspace and the MLflow
store from the environment (:class:`~churnkit.service.state.ServiceSettings`).

Models load in a background thread, so ``/healthz`` answers at once and ``/readyz`` turns
200 only when the configured champions (pinned to versions), their manifests and the latest
score snapshot are in memory. ``POST /reload`` (or ``CHURNKIT_RELOAD_SECONDS``) loads a newly
promoted champion beside the old one and swaps one reference: a request reads the state
once, so it runs wholly on the old or wholly on the new models and none fails in between.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
import time
from typing import Any

import anyio
import bentoml
import pandas as pd
from starlette.responses import JSONResponse

from churnkit.contracts import as_of_cutoff
from churnkit.service import engine
from churnkit.service.backlog import Backlog
from churnkit.service.direct import Direct
from churnkit.service.gate import Gate, error, shed
from churnkit.service.logs import quiet_client_errors
from churnkit.service.schemas import (
    Events,
    EventsBody,
    EventsResponse,
    ExplainBody,
    Explanation,
    FeatureRows,
    FeatureRowsBody,
    Info,
    NoBody,
    Scores,
    ScoresJSON,
    UserIds,
    UserIdsBody,
    Users,
    UsersResponse,
    records,
)
from churnkit.service.state import Deployment, Holder, Loaded, ServiceSettings

DEPLOYMENT = Deployment.from_env()
"""Workers, threads, the latency budget and inline rows; BentoML takes the first two when the
class is defined."""
LOG = logging.getLogger("churnkit.service")


@bentoml.service(
    name="churnkit",
    workers=DEPLOYMENT.workers,
    threads=DEPLOYMENT.threads,
    traffic={"timeout": 120},
)
class ChurnService:
    """Scores, explanations and health of churnkit's champion models over HTTP."""

    def __init__(self) -> None:
        quiet_client_errors()
        self.settings = ServiceSettings.from_env()
        self.holder = Holder(self.settings)
        self._limiter: anyio.CapacityLimiter | None = None
        self._queue: Backlog | None = None
        threading.Thread(target=self.holder.watch, name="churnkit-load", daemon=True).start()

    def __is_ready__(self) -> bool:
        return self.holder.state is not None

    # ------------------------------------------------------------------ scoring

    @bentoml.api(route="/score_features", input_spec=FeatureRowsBody, output_spec=ScoresJSON)
    async def score_features(self, rows: FeatureRows) -> list[Scores]:
        """Score feature rows as a training set holds them (one per user; null = missing).

        Large batches may post the same rows as an Arrow IPC stream instead (``Content-Type:
        application/vnd.apache.arrow.stream``): one numeric column per feature, an optional
        ``user_id`` text column; the answer is the same JSON.
        """
        # (not in the docstring: that is the endpoint's OpenAPI description) Over HTTP a body
        # that validates is answered by direct.Direct, in front of BentoML's dispatch, through
        # the same `answer`; BentoML's dispatch sees only bodies that fail validation (its
        # 400) and in-process calls.
        return await self.answer(rows)

    async def answer(self, rows: FeatureRows) -> list[dict[str, Any]] | JSONResponse:
        """``/score_features`` for validated rows: the JSON-ready answers, or a 503 when shed.

        Not batchable: BentoML's adaptive batcher held single rows back by up to the wait it
        last saw. A small request is scored on the event loop, about a millisecond, less than
        the hop to a worker thread and back; a larger one in a worker thread (at most
        CHURNKIT_THREADS), so the loop keeps answering meanwhile, unless its expected wait
        there passes the budget (CHURNKIT_BATCH_LATENCY_MS): then it is shed, 503 with
        Retry-After.
        """
        state = self._state()
        if len(rows) <= DEPLOYMENT.inline_rows:
            return engine.score_feature_rows(state.scorer, state.versions, rows)
        backlog = self._backlog()
        wait = backlog.admit(len(rows))
        if wait is not None:
            LOG.warning("shed POST /score_features: %d rows, expected wait %.2f s > budget %.2f s "
                        "(%d requests, %d rows ahead)", len(rows), wait, backlog.budget_s,
                        backlog.requests, backlog.rows)
            return shed()
        seconds = None
        try:
            answers, seconds = await anyio.to_thread.run_sync(_timed_scoring, state, rows, limiter=self._workers())
        finally:
            backlog.done(len(rows), seconds)
        return answers

    @bentoml.api(route="/score_users", input_spec=UserIdsBody)
    def score_users(self, user_ids: UserIds) -> UsersResponse:
        """Scores of known users from the latest snapshot; unknown ids get ``status: not_found``."""
        state = self._state()
        snap = state.snapshot
        if snap is None or state.snapshot_path is None:
            return error(404, "no score snapshot in the workspace; run churnkit score --as-of DATE", ["user_ids"])
        results = engine.snapshot_rows(snap, user_ids)
        return UsersResponse(as_of=state.snapshot_as_of, snapshot=state.snapshot_path.name, results=results)

    @bentoml.api(route="/score_events", input_spec=EventsBody)
    def score_events(self, as_of: dt.date, events: Events, users: Users | None = None) -> EventsResponse:
        """Features from raw recent events (the batch feature code) and their scores.

        Events may come in any order (they are sorted); one at or after the as-of cutoff is a
        400 naming it, as batch features never see such events.
        """
        state = self._state()
        cutoff = as_of_cutoff(as_of)
        for i, e in enumerate(events):
            if e.ts >= cutoff:
                return error(
                    400, f"events[{i}].ts: {e.ts.isoformat()} is not before the as-of cutoff {cutoff.isoformat()}",
                    ["events", i, "ts"],
                )
        ev = pd.DataFrame([e.model_dump() for e in events]).sort_values("ts", kind="stable")
        us = None
        if users:
            try:
                us = pd.DataFrame([{"user_id": u.user_id, "signup_ts": u.signup_ts, **u.attributes()} for u in users])
            except ValueError as err:
                return error(400, f"users: {err}", ["users"])
            repeated = us["user_id"][us["user_id"].duplicated()].tolist()
            if repeated:
                return error(400, f"users: user_id {repeated[0]!r} is given more than once", ["users"])
        with self.holder.engine_lock:
            scored = engine.score_events(state.scorer, ev, us, as_of)
        return EventsResponse(as_of=as_of.isoformat(), model_versions=state.versions, results=records(scored))

    @bentoml.api(route="/explain", input_spec=ExplainBody)
    def explain(self, user_id: str, top: int = 3) -> Explanation:
        """Reason codes for one user at the snapshot date: what pushes each score up."""
        state = self._state()
        if state.snapshot is None or state.snapshot_as_of is None:
            return error(404, "no score snapshot in the workspace; run churnkit score --as-of DATE", ["user_id"])
        if user_id not in state.snapshot.index:
            return error(404, f"user_id: {user_id!r} is not in the snapshot of {state.snapshot_as_of}", ["user_id"])
        with self.holder.engine_lock:
            scores, reasons = engine.explain_user(state, self.holder.workspace, user_id, state.snapshot_as_of, top)
        return Explanation(user_id=user_id, as_of=state.snapshot_as_of, scores=scores, reasons=reasons)

    # ------------------------------------------------------------------ admin

    @bentoml.api(route="/info", input_spec=NoBody)
    def info(self) -> Info:
        """Model versions, snapshot date and size, limits; works before the models load."""
        s = self.holder.state
        limits = self.settings.limits
        return Info(
            ready=s is not None,
            error=self.holder.error,
            workspace=str(self.settings.workspace),
            tracking_uri=s.tracking_uri if s else self.settings.tracking_uri,
            model_versions=s.versions if s else {},
            problems=s.problems if s else {},
            snapshot=s.snapshot_path.name if s and s.snapshot_path else None,
            snapshot_as_of=s.snapshot_as_of if s else None,
            snapshot_rows=len(s.snapshot) if s and s.snapshot is not None else 0,
            features=len(s.scorer.feature_names) if s else 0,
            loaded_at=s.loaded_at if s else None,
            reloads=self.holder.reloads,
            limits={"max_rows": limits.max_rows, "max_events": limits.max_events,
                    "max_body_bytes": limits.max_body_bytes},
        )

    @bentoml.api(route="/reload", input_spec=NoBody)
    def reload(self) -> dict[str, Any]:
        """Load the current champions and latest snapshot, swap them in if anything changed."""
        try:
            changed = self.holder.reload(only_if_changed=True)
        except Exception:  # noqa: BLE001 - the old models keep serving
            return error(409, f"reload failed, still serving the old models: {self.holder.error}")
        s = self.holder.state
        if s is None:
            return error(503, f"not ready: {self.holder.error}")
        return {
            "changed": changed,
            "model_versions": s.versions,
            "snapshot": s.snapshot_path.name if s.snapshot_path else None,
        }

    def _backlog(self) -> Backlog:
        if self._queue is None:
            self._queue = Backlog(DEPLOYMENT.threads, DEPLOYMENT.batch_latency_ms / 1000)
        return self._queue

    def _workers(self) -> anyio.CapacityLimiter:
        """At most ``threads`` scoring threads (made on first use: it needs the event loop)."""
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(DEPLOYMENT.threads)
        return self._limiter

    def _state(self) -> Loaded:
        state = self.holder.state
        if state is None:  # the gate answers 503 first; this guards direct calls
            raise bentoml.exceptions.ServiceUnavailable("models are still loading")
        return state


def _timed_scoring(state: Loaded, rows: FeatureRows) -> tuple[list[dict[str, Any]], float]:
    """``/score_features`` answers and the seconds they took, run in a worker thread."""
    t0 = time.perf_counter()
    answers = engine.score_feature_rows(state.scorer, state.versions, rows)
    return answers, time.perf_counter() - t0


ChurnService.add_asgi_middleware(Gate)
ChurnService.add_asgi_middleware(Direct, server="BentoML Service/churnkit")
"""In this order: the gate's checks (token, size, readiness) come first."""
