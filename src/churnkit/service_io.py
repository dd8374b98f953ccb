"""Request and response models of the prediction service (pydantic, JSON).

Kept apart from :mod:`churnkit.service` so they can be imported and tested without BentoML.
Validation happens here, per request and before adaptive batching: a bad row in one request
must never fail the batch it would have shared with other clients' requests.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Annotated, Any

from pydantic import AllowInfNan, BaseModel, ConfigDict, Field, Strict, field_validator

from churnkit.features.context import EVENT_TYPES


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


MAX_ROWS = _env_int("CHURNKIT_MAX_ROWS", 10_000)
"""Rows (feature rows or user ids) per request; more is a 400 naming the field."""
MAX_EVENTS = _env_int("CHURNKIT_MAX_EVENTS", 100_000)
"""Events per /score_events request."""
MAX_BODY_BYTES = _env_int("CHURNKIT_MAX_BODY_BYTES", 32 * 1024 * 1024)
"""Request bodies larger than this are refused with 413 before they are parsed."""

Finite = Annotated[float, Strict(), AllowInfNan(False)]
"""A JSON number: strings, booleans, NaN and Infinity are rejected (ints are fine)."""
Id = Annotated[str, Strict(), Field(min_length=1, max_length=256)]
Text = Annotated[str, Strict(), Field(max_length=256)]


class _Schema:
    """The feature names the loaded models need; set when the models load (per process)."""

    names: frozenset[str] | None = None


feature_schema = _Schema()


def check_feature_names(values: dict[str, Any]) -> dict[str, Any]:
    """Missing and unknown feature names, named in the error (a typo is not silently 0)."""
    names = feature_schema.names
    if names is None:
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


class Event(BaseModel):
    """One raw event in the event contract. ``ts`` without an offset is read as UTC."""

    model_config = ConfigDict(extra="forbid")
    user_id: Id
    ts: dt.datetime
    event: Annotated[str, Strict()]
    amount: Finite | None = None
    category: Text | None = None
    channel: Text | None = None
    campaign_id: Text | None = None
    variant: Text | None = None

    @field_validator("event")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in EVENT_TYPES:
            raise ValueError(f"unknown event {v!r}; known: {', '.join(EVENT_TYPES)}")
        return v

    @field_validator("amount")
    @classmethod
    def _non_negative(cls, v: float | None) -> float | None:
        if v is not None and v < 0:
            raise ValueError(f"amount {v} is negative")
        return v

    @field_validator("ts")
    @classmethod
    def _utc(cls, v: dt.datetime) -> dt.datetime:
        return v.replace(tzinfo=dt.UTC) if v.tzinfo is None else v.astimezone(dt.UTC)


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


UserIds = Annotated[list[Id], Field(min_length=1, max_length=MAX_ROWS)]
FeatureRows = Annotated[list[FeatureRow], Field(min_length=1, max_length=MAX_ROWS)]
Events = Annotated[list[Event], Field(min_length=1, max_length=MAX_EVENTS)]
Users = Annotated[list[User], Field(max_length=MAX_ROWS)]


# --------------------------------------------------------------------------- responses


class Scores(BaseModel):
    """One user's scores (null where the user is not eligible for that problem)."""

    user_id: str | None = None
    churn_probability: float | None = None
    purchase_probability: float | None = None
    predicted_ltv: float | None = None
    ltv_low: float | None = None
    ltv_high: float | None = None
    value_at_risk: float | None = None
    in_population: dict[str, bool | None] = Field(default_factory=dict)
    """Per model: whether the row is one the model was trained on (active in its look-back)."""
    model_versions: dict[str, int] = Field(default_factory=dict)


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
