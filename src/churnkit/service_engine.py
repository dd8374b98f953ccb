"""What the prediction service needs from :mod:`churnkit.scoring`, in one place.

The service never computes a feature or a score itself: feature rows go through the
scorer's own per-model outputs (:func:`churnkit.scoring.role_outputs`), raw events
through :meth:`Scorer.score_events` (the batch feature code on memtables), and
explanations through :meth:`Scorer.explain` on features built by the batch path.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from churnkit.scoring import ROLES, Scorer, population_mask, role_outputs, value_at_risk

if TYPE_CHECKING:
    from churnkit.service import ServiceSettings


@dataclass(frozen=True)
class ServiceScorer:
    """The pinned scorer and the store it came from (password redacted)."""

    scorer: Scorer
    tracking_uri: str | None


def _config(settings: ServiceSettings) -> Any:
    from churnkit.config import load_churnkit_config

    return load_churnkit_config(settings.config)


def load_scorer(settings: ServiceSettings, snapshot: Path | None = None) -> ServiceScorer:
    """The three champions pinned to versions, tiering with the RFM cut points of the
    ``snapshot`` scores the service serves (the same run, so both endpoints agree)."""
    from churnkit import tracking
    from churnkit.scoring import stored_segmenter
    from churnkit.workspace import Workspace

    cfg = _config(settings)
    scorer = Scorer.load(
        Workspace(settings.workspace), tracking_uri=settings.tracking_uri, configured_uri=cfg.tracking_uri,
        settings=cfg.scoring, segmenter=stored_segmenter(snapshot),
    )
    uri = tracking.current_uri()
    return ServiceScorer(scorer, tracking.redact(uri) if uri else None)


def versions(s: ServiceScorer) -> dict[str, int]:
    return {role: int(v["version"]) for role, v in s.scorer.versions.items()}


def problems(s: ServiceScorer) -> dict[str, str]:
    return {role: str(v["problem"]) for role, v in s.scorer.versions.items()}


def feature_names(s: ServiceScorer) -> list[str]:
    """Every feature any of the three models reads, in the first model's order."""
    names: list[str] = []
    for rm in s.scorer.models.values():
        names += [n for n in rm.features if n not in names]
    return names


def champion_versions(settings: ServiceSettings, problems_by_role: dict[str, str]) -> dict[str, int]:
    """The versions the ``champion`` aliases point at now (cheap: no model download)."""
    from churnkit import tracking

    cfg = _config(settings)
    tracking.open_store(settings.workspace, cfg.tracking_uri, settings.tracking_uri)
    return {role: tracking.resolve_version(p) for role, p in problems_by_role.items()}


def score_features(s: ServiceScorer, X: pd.DataFrame) -> pd.DataFrame:
    """Scores of feature rows in input order: the scorer's model calls, no reasons or tiers."""
    out: dict[str, np.ndarray] = {}
    for role, rm in s.scorer.models.items():
        out |= role_outputs(rm, X, s.scorer.settings.chunk_rows)
        out[f"{role}_in_population"] = population_mask(X, rm.spec).to_numpy()
    out["value_at_risk"] = value_at_risk(out["churn_probability"], out["predicted_ltv"])
    return pd.DataFrame(out, index=X.index)


def cutoff(as_of: dt.date) -> dt.datetime:
    """Features at ``as_of`` use events strictly before its UTC midnight (the batch rule)."""
    return dt.datetime.combine(as_of, dt.time(), dt.UTC)


def score_events(s: ServiceScorer, events: pd.DataFrame, users: pd.DataFrame | None, as_of: dt.date) -> pd.DataFrame:
    """Per user of the events: the batch scorer's full row (scores, tier, stage, reasons)."""
    scored = s.scorer.score_events(events, users, as_of)
    missing = sorted(set(events["user_id"]) - set(scored["user_id"]))
    if missing:  # no activity or not signed up before as_of: nobody would score them in batch
        scored = pd.concat([scored, pd.DataFrame({"user_id": missing, "status": "not_scored"})], ignore_index=True)
    scored["status"] = scored["status"].fillna("ok") if "status" in scored else "ok"
    return scored


def explain_user(
    s: ServiceScorer, settings: ServiceSettings, user_id: str, as_of: str, top: int
) -> tuple[dict[str, Any], dict[str, list[dict[str, Any]]]]:
    """One user's features at the snapshot date from the workspace (batch path), then reasons."""
    from churnkit.warehouse import duckdb_connection, workspace_events, workspace_users
    from churnkit.workspace import Workspace

    ws = Workspace(settings.workspace)
    con = duckdb_connection()
    try:
        events = workspace_events(con, ws)
        events = events.filter(events.user_id == user_id)
        users = workspace_users(con, ws)
        if users is not None:
            users = users.filter(users.user_id == user_id)
        frames = s.scorer.features_as_of(events, users, dt.date.fromisoformat(as_of))
        scored = s.scorer.score_features(frames, as_of=dt.date.fromisoformat(as_of), reasons=0)
        long = s.scorer.explain(frames, top=top)
    finally:
        con.disconnect()
    from churnkit.service import records

    scores = records(scored)[0] if len(scored) else {}
    reasons: dict[str, list[dict[str, Any]]] = {}
    for (role, direction), g in long.groupby(["score", "direction"], sort=False):
        reasons[f"{role}_{direction}"] = [
            {"feature": r.feature, "contribution": float(r.contribution),
             "value": None if pd.isna(r.value) else float(r.value), "text": r.text}
            for r in g.sort_values("rank").itertuples()
        ]
    for role in ROLES:
        for direction in ("up", "down"):
            reasons.setdefault(f"{role}_{direction}", [])
    return scores, reasons
