"""Request and response models of the prediction service (pydantic, JSON).

Validation happens here, per request, before anything is scored: a bad row in one request
fails that request alone. The event
model is derived from the event contract (:data:`churnkit.contracts.EVENT_FIELDS`); the
feature names and size limits come from the running service (:func:`state.current_holder`).
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

import bentoml
import numpy as np
import pandas as pd
from pydantic import (
    AfterValidator,
    AllowInfNan,
    BaseModel,
    ConfigDict,
    Field,
    Strict,
    create_model,
    field_validator,
    model_serializer,
)
from pydantic_core import to_json
from starlette.responses import Response

from churnkit.contracts import (
    AMOUNT_LIMIT,
    EVENT_FIELDS,
    EVENT_TYPES,
    MAX_TEXT_CHARS,
    SCORE_COLUMNS,
)
from churnkit.service.state import EventRules, Limits, current_holder

Finite = Annotated[float, Strict(), AllowInfNan(False)]
"""A JSON number: strings, booleans, NaN and Infinity are rejected (ints are fine)."""
Id = Annotated[str, Strict(), Field(min_length=1, max_length=MAX_TEXT_CHARS)]
Text = Annotated[str, Strict(), Field(max_length=MAX_TEXT_CHARS)]


def _limits() -> Limits:
    holder = current_holder()
    return holder.settings.limits if holder is not None else Limits()


def _rules() -> EventRules:
    holder = current_holder()
    return holder.rules if holder is not None else EventRules()


def _at_most(limit: str):
    """A list no longer than the service's ``limit`` (see :class:`Limits`)."""

    def check(v: list) -> list:
        most = getattr(_limits(), limit)
        if len(v) > most:
            raise ValueError(f"at most {most} items per request, got {len(v)}")
        return v

    return AfterValidator(check)


def check_feature_names(values: dict[str, Any], names: frozenset[str] | None = None) -> dict[str, Any]:
    """Missing and unknown feature names, named in the error (a typo is not silently 0);
    ``names`` defaults to the running service's."""
    if names is None:
        holder = current_holder()
        names = holder.feature_names if holder is not None else None
    if names is None or values.keys() == names:  # the usual row: one set comparison, ~1 us
        return values
    missing = sorted(names - values.keys())
    extra = sorted(values.keys() - names)
    parts = []
    if missing:
        parts.append(f"missing features: {', '.join(missing[:10])}{' ...' if len(missing) > 10 else ''}")
    if extra:
        parts.append(f"unknown features: {', '.join(extra[:10])}{' ...' if len(extra) > 10 else ''}")
    if parts:
        raise ValueError("; ".join(parts) + f" ({len(missing)} missing, {len(extra)} unknown)")
    return values


class FeatureRow(BaseModel):
    """One user's features, as in a training set: every feature, null for missing."""

    model_config = ConfigDict(extra="forbid")
    user_id: Id | None = None
    features: dict[str, Finite | None]

    @field_validator("features")
    @classmethod
    def _names(cls, v: dict[str, float | None]) -> dict[str, float | None]:
        return check_feature_names(v)


class _EventRules(BaseModel):
    """What a posted event must satisfy beyond its types."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("event", check_fields=False)
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in EVENT_TYPES:
            raise ValueError(f"unknown event {v!r}; known: {', '.join(EVENT_TYPES)}")
        return v

    @field_validator("amount", check_fields=False)
    @classmethod
    def _in_range(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"amount {v} is negative")
        if v is not None and v > AMOUNT_LIMIT:
            raise ValueError(f"amount {v} is beyond {AMOUNT_LIMIT:g}, as ingest refuses")
        return v

    @field_validator("ts", mode="before", check_fields=False)
    @classmethod
    def _iso_text(cls, v: Any) -> Any:
        if not isinstance(v, str):
            raise ValueError("expected an ISO 8601 date-time string, e.g. 2024-05-18T10:00:00Z")  # noqa: TRY004 - pydantic reports ValueError
        return v

    @field_validator("ts", check_fields=False)
    @classmethod
    def _utc_in_range(cls, v: dt.datetime) -> dt.datetime:
        v = v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)
        earliest = _rules().earliest
        if v < earliest:
            raise ValueError(f"{v.isoformat()} is before {earliest.date()}, the earliest time ingest accepts")
        return v


EventName = Annotated[str, Strict(), Field(json_schema_extra={"enum": list(EVENT_TYPES)})]
"""An event type the features count (the spec lists them; the validator names a wrong one)."""
_FIELD_TYPES: dict[tuple[str, bool], Any] = {
    ("string", True): Id,
    ("string", False): Text | None,
    ("timestamp", True): dt.datetime,
    ("float", False): Finite | None,
}
Event = create_model(
    "Event",
    __base__=_EventRules,
    __doc__="One raw event in the event contract. ``ts`` without an offset is read as UTC.",
    **{f.name: (EventName if f.name == "event" else _FIELD_TYPES[f.kind, f.required], ... if f.required else None)
       for f in EVENT_FIELDS},
)


class User(BaseModel):
    """A users-table row: signup time and string attributes (region, platform, ...)."""

    model_config = ConfigDict(extra="allow")
    user_id: Id
    signup_ts: dt.datetime | None = None

    @field_validator("signup_ts")
    @classmethod
    def _utc(cls, v: dt.datetime | None) -> dt.datetime | None:
        if v is None:
            return v
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)

    def attributes(self) -> dict[str, Any]:
        extra = dict(self.model_extra or {})
        for key, value in extra.items():
            if value is not None and not isinstance(value, str):
                raise ValueError(f"attribute {key!r} must be a string or null")
        return extra


UserIds = Annotated[list[Id], Field(min_length=1), _at_most("max_rows")]
FeatureRows = Annotated[list[FeatureRow], Field(min_length=1), _at_most("max_rows")]
Events = Annotated[list[Event], Field(min_length=1), _at_most("max_events")]  # type: ignore[valid-type]
Users = Annotated[list[User], _at_most("max_rows")]


# --------------------------------------------------------------------------- request bodies


class _Body(BaseModel):
    """A request body: unknown top-level keys are errors, as in every nested model."""

    model_config = ConfigDict(extra="forbid")


class FeatureRowsBody(_Body):
    rows: FeatureRows


class UserIdsBody(_Body):
    user_ids: UserIds


class EventsBody(_Body):
    as_of: dt.date
    events: Events
    users: Users | None = None


class ExplainBody(_Body):
    user_id: Id
    top: Annotated[int, Strict(), Field(ge=1, le=10)] = 3


class NoBody(_Body):
    """``{}`` or no body at all."""


# --------------------------------------------------------------------------- responses


class _RoleScores(BaseModel):
    """Score columns are present for the roles the service scores (``scoring:``), absent for
    the others, as in a batch scores file."""

    @model_serializer(mode="wrap")
    def _configured_roles_only(self, handler: Any) -> dict[str, Any]:
        out = handler(self)
        return {k: v for k, v in out.items() if k not in SCORE_COLUMNS or k in self.model_fields_set}


Scores = create_model(
    "Scores",
    __base__=_RoleScores,
    __doc__="One user's scores: a column per configured role's output (null where a model has no value).",
    user_id=(str | None, None),
    **{col: (float | None, Field(None, description="Present only when its role is configured."))
       for col in SCORE_COLUMNS},
    in_population=(dict[str, bool | None], Field(default_factory=dict,
                   description="Per model: whether the row is one the model was trained on.")),
    model_versions=(dict[str, int], Field(default_factory=dict)),
)


def _score_rows() -> list[Scores]:  # type: ignore[valid-type]
    """The ``/score_features`` answer as declared: BentoML derives its output spec from this."""
    raise NotImplementedError


class ScoresJSON(bentoml.IODescriptor.from_output(_score_rows)):  # type: ignore[misc]
    """``list[Scores]`` as BentoML declares it (the OpenAPI schema is unchanged), answered from
    the plain dicts of :func:`churnkit.service.engine.score_feature_rows` in one pydantic-core
    encoding pass: validating 1000 ``Scores`` and running their serializer cost ~20 ms."""

    @classmethod
    async def to_http_response(cls, obj: Any, serde: Any) -> Response:
        return scores_response(obj)


def scores_response(answers: list[dict[str, Any]]) -> Response:
    """The ``/score_features`` answers as an HTTP response, wherever the request was parsed
    (BentoML's dispatch or :class:`churnkit.service.direct.Direct`)."""
    return Response(to_json(answers), media_type="application/json")


class UserScores(BaseModel):
    """A snapshot row, or ``status: not_found`` for an id the snapshot does not hold."""

    model_config = ConfigDict(extra="allow")
    user_id: str
    status: str


class UsersResponse(BaseModel):
    as_of: str | None
    snapshot: str | None
    results: list[UserScores]


class EventsResponse(BaseModel):
    as_of: str
    model_versions: dict[str, int]
    results: list[dict[str, Any]]


class Reason(BaseModel):
    feature: str
    contribution: float
    value: float | None
    text: str


class Explanation(BaseModel):
    user_id: str
    as_of: str | None
    scores: dict[str, Any]
    reasons: dict[str, list[Reason]]


class Info(BaseModel):
    ready: bool
    error: str | None
    workspace: str
    tracking_uri: str | None
    model_versions: dict[str, int]
    problems: dict[str, str]
    snapshot: str | None
    snapshot_as_of: str | None
    snapshot_rows: int
    features: int
    loaded_at: str | None
    reloads: int
    limits: dict[str, int]


# --------------------------------------------------------------------------- JSON


def json_value(v: Any) -> Any:
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
        return [json_value(x) for x in v]
    if isinstance(v, dict):
        return {k: json_value(x) for k, x in v.items()}
    try:
        if pd.isna(v):
            return None
    except (TypeError, ValueError):
        pass
    return v


def records(df: pd.DataFrame) -> list[dict[str, Any]]:
    """JSON-ready rows; version columns stay whole numbers even after a reindex made them float."""
    rows = [{k: json_value(v) for k, v in row.items()} for row in df.to_dict("records")]
    versions = [c for c in df.columns if str(c).endswith("_model_version")]
    for row in rows:
        for c in versions:
            if row.get(c) is not None:
                row[c] = int(row[c])
    return rows
