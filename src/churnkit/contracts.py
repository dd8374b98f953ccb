"""The contracts every layer shares: one definition of an event, a key, a label and a score row.

Arrow, Ibis and pydantic schemas of the event are derived from :data:`EVENT_FIELDS` here
(the pydantic request model in ``service.schemas``), never restated, so ingest, the
warehouse and the service cannot drift apart.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import pyarrow as pa

if TYPE_CHECKING:
    import ibis

# --------------------------------------------------------------------------- events

FieldKind = Literal["string", "timestamp", "float"]


@dataclass(frozen=True)
class EventField:
    """One column of the event contract."""

    name: str
    kind: FieldKind
    required: bool
    description: str


EVENT_FIELDS: tuple[EventField, ...] = (
    EventField("user_id", "string", True, "the user, as written in the source"),
    EventField("ts", "timestamp", True, "when it happened (UTC)"),
    EventField("event", "string", True, "what happened (see EVENT_TYPES)"),
    EventField("amount", "float", False, "revenue of a purchase; the (positive) amount refunded by a refund"),
    EventField("category", "string", False, "product category"),
    EventField("channel", "string", False, "app, web, push, ..."),
    EventField("campaign_id", "string", False, "campaign that sent or caused it"),
    EventField("variant", "string", False, "the campaign arm the user was in"),
    EventField("order_id", "string", False, "the order a purchase line belongs to (lines of one order are one purchase)"),
)

EVENT_COLUMNS: tuple[str, ...] = tuple(f.name for f in EVENT_FIELDS)
AMOUNT_LIMIT = 1e12
"""The largest amount one event may carry, either sign. Beyond it a value is a unit or parsing
error, not revenue, and sums of accepted amounts can never overflow to infinity: ingest
quarantines such rows (``amount_out_of_range``) and the service refuses them."""
MAX_TEXT_CHARS = 256
"""The longest user id, event name, category, channel, campaign id or variant ingest accepts
and the service takes (longer is a corrupt field, not an identifier)."""
OPTIONAL_STRING_FIELDS: tuple[str, ...] = tuple(
    f.name for f in EVENT_FIELDS if f.kind == "string" and not f.required
)
"""Contract columns that are always present in the output, null where the source has none."""

UTC_US = pa.timestamp("us", tz="UTC")
_ARROW = {"string": pa.string(), "timestamp": UTC_US, "float": pa.float64()}
_IBIS = {"string": "string", "timestamp": "timestamp('UTC')", "float": "float64"}

EVENT_ARROW_SCHEMA = pa.schema(
    [pa.field(f.name, _ARROW[f.kind], nullable=not f.required) for f in EVENT_FIELDS]
)
if TYPE_CHECKING:
    EVENT_IBIS_SCHEMA: ibis.Schema


def __getattr__(name: str) -> Any:
    """``EVENT_IBIS_SCHEMA``, built on first use (PEP 562): importing Ibis costs ~0.3 s and
    every command imports this module, ``--help`` and ``ingest`` included, which never use it."""
    if name == "EVENT_IBIS_SCHEMA":
        import ibis

        schema = globals()[name] = ibis.schema({f.name: _IBIS[f.kind] for f in EVENT_FIELDS})
        return schema
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def users_arrow_schema(attributes: list[str]) -> pa.Schema:
    """The users table: id, signup time (UTC, null if the source has none), string attributes."""
    return pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("signup_ts", UTC_US),
            *[pa.field(name, pa.string()) for name in attributes],
        ]
    )


ASSIGNMENTS_ARROW_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("campaign_id", pa.string(), nullable=False),
        pa.field("variant", pa.string(), nullable=False),
        pa.field("assigned_ts", UTC_US, nullable=False),
        pa.field("horizon_days", pa.int32()),
        pa.field("is_control", pa.bool_()),
        pa.field("design", pa.string()),
    ]
)
"""The campaign assignments table (exposures): one row per user and campaign, the variant the
user got and when (UTC); ``horizon_days`` is the outcome window when the table gives one;
``is_control`` is null when the source does not declare the control (the project config
names it per campaign then)."""
ASSIGNMENT_COLUMNS: tuple[str, ...] = tuple(ASSIGNMENTS_ARROW_SCHEMA.names)


# --------------------------------------------------------------------------- vocabulary

EVENT_NOUNS: dict[str, tuple[str, str]] = {
    "session": ("session", "sessions"),
    "view": ("view", "views"),
    "add_to_cart": ("add-to-cart", "add-to-carts"),
    "purchase": ("purchase", "purchases"),
    "push_sent": ("push received", "pushes received"),
    "push_open": ("push open", "push opens"),
    "coupon_redeem": ("coupon redemption", "coupon redemptions"),
    "support_ticket": ("support ticket", "support tickets"),
    "checkin": ("check-in", "check-ins"),
    "refund": ("refund", "refunds"),
}
"""The event types features count one by one, with the words (singular, plural) people read."""

EVENT_TYPES: tuple[str, ...] = tuple(EVENT_NOUNS)
"""Event names counted per type; a source's other names still count as activity."""

PURCHASE = "purchase"
"""A purchase line (or a whole order): counts, revenue and the purchase label read it."""
REFUND = "refund"
"""Goods returned or an order cancelled: its amount is positive and nets against revenue."""

NOT_ACTIVITY: tuple[str, ...] = ("push_sent", REFUND)
"""Events that do not count as activity unless a problem says so: ``push_sent`` is sent *to*
the user, not done by them; a ``refund`` undoes a purchase rather than showing engagement
(counting it would call a customer who returns everything and leaves "active")."""

FEATURE_FAMILIES: tuple[str, ...] = (
    "rfm",
    "windows",
    "trends",
    "gaps",
    "funnel",
    "diversity",
    "push",
    "campaigns",
    "attributes",
)
"""Feature families a problem may select, by name; each is ``churnkit.features.families.<name>``."""

# --------------------------------------------------------------------------- training sets

KEYS: tuple[str, str] = ("user_id", "cutoff")
"""A row of a training set or of feature rows: one user at one cutoff (a UTC midnight)."""
LABEL = "label"
"""The outcome column of a training set (float64)."""

Kind = Literal["churn", "purchase", "revenue"]
CLASSIFIER_KINDS: tuple[str, ...] = ("churn", "purchase")

# --------------------------------------------------------------------------- scores

ROLES: tuple[str, ...] = ("churn", "purchase", "ltv")
"""The scores a scoring run gives; each is the champion of one configured problem."""
KIND_OF_ROLE: dict[str, str] = {"churn": "churn", "purchase": "purchase", "ltv": "revenue"}

OUTPUT_PARTS: dict[str, tuple[str, ...]] = {
    "churn": ("score",),
    "purchase": ("score",),
    "revenue": ("score", "low", "high"),
}
"""What a model of each kind outputs: a probability, or LTV with its interval."""

ROLE_OUTPUTS: dict[str, dict[str, str]] = {
    "churn": {"score": "churn_probability"},
    "purchase": {"score": "purchase_probability"},
    "ltv": {"score": "predicted_ltv", "low": "ltv_low", "high": "ltv_high"},
}
"""The score-row column of each output part, per role."""

VALUE_AT_RISK = "value_at_risk"
SCORE_COLUMNS: tuple[str, ...] = (*(c for r in ROLES for c in ROLE_OUTPUTS[r].values()), VALUE_AT_RISK)
"""Model outputs of a score row, in order, and the value at risk derived from them."""
REASON_PREFIX = "reason_"


def in_population_column(role: str) -> str:
    """Whether the user is one the role's model was trained on (eligible under its problem)."""
    return f"{role}_in_population"


def model_version_column(role: str) -> str:
    return f"{role}_model_version"


def reason_column(rank: int) -> str:
    """``reason_1`` is the strongest reason (1-based)."""
    return f"{REASON_PREFIX}{rank}"


def reason_columns(columns: list[str] | tuple[str, ...]) -> list[str]:
    """The reason columns among ``columns``, strongest first."""
    found = [c for c in columns if c.startswith(REASON_PREFIX) and c[len(REASON_PREFIX):].isdigit()]
    return sorted(found, key=lambda c: int(c[len(REASON_PREFIX):]))


# --------------------------------------------------------------------------- time


def as_of_cutoff(day: dt.date) -> dt.datetime:
    """What "as of DAY" means everywhere (ingest, features, scores, the service): everything
    strictly before DAY's midnight, UTC. Features at a cutoff see only events before it."""
    return dt.datetime.combine(day, dt.time(), dt.UTC)
