"""Per-row validation of mapped events: one reason code per rejected row, vectorised.

Rules are checked in a fixed order and a row gets the first that fails (``malformed_row`` is
decided earlier, by the reader): ``missing_user_id``, ``bad_timestamp``,
``timestamp_out_of_range`` (before ``min_ts`` or at/after ``as_of``), ``missing_event``,
``unknown_event`` (only with a vocabulary), ``wrong_type``, ``non_finite_amount``,
``negative_amount`` (only where the source allows none), ``amount_out_of_range`` (beyond
``contracts.AMOUNT_LIMIT`` either way). A missing amount is allowed (null).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnkit.config import FieldSpec
from churnkit.contracts import (
    AMOUNT_LIMIT,
    EVENT_ARROW_SCHEMA,
    MAX_TEXT_CHARS,
    OPTIONAL_STRING_FIELDS,
)
from churnkit.events.mapping import MappedEvents
from churnkit.events.schema import (
    AMOUNT_OUT_OF_RANGE,
    BAD_TIMESTAMP,
    MISSING_EVENT,
    MISSING_USER_ID,
    NEGATIVE_AMOUNT,
    NON_FINITE_AMOUNT,
    TEXT_TOO_LONG,
    TIMESTAMP_OUT_OF_RANGE,
    UNKNOWN_EVENT,
    WRONG_TYPE,
)

ROW_REASONS: tuple[str, ...] = (
    MISSING_USER_ID,
    BAD_TIMESTAMP,
    TIMESTAMP_OUT_OF_RANGE,
    MISSING_EVENT,
    UNKNOWN_EVENT,
    WRONG_TYPE,
    NON_FINITE_AMOUNT,
    NEGATIVE_AMOUNT,
    AMOUNT_OUT_OF_RANGE,
    TEXT_TOO_LONG,
)
"""Reason for code ``k`` is ``ROW_REASONS[k - 1]``; code 0 means the row is accepted."""

EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def to_us(ts: dt.datetime) -> int:
    """Microseconds since the epoch for an aware datetime (naive is taken as UTC)."""
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    return (ts - EPOCH) // dt.timedelta(microseconds=1)


def iso_utc(us: int) -> str:
    """ISO 8601 with a ``Z`` suffix, the form used in summaries and messages; a time outside
    years 1-9999 (a corrupt integer timestamp) is said as its microseconds."""
    try:
        text = (EPOCH + dt.timedelta(microseconds=int(us))).isoformat()
    except OverflowError:
        return f"{int(us):,} microseconds from 1970 (outside the calendar)"
    return text.replace("+00:00", "Z")


@dataclass(frozen=True)
class Rules:
    min_us: int
    as_of_us: int
    vocabulary: tuple[str, ...] | None
    allow_negative_amount: bool
    ts_formats: tuple[str, ...]
    user_id_spec: FieldSpec
    event_spec: FieldSpec


def validate_events(m: MappedEvents, rules: Rules) -> np.ndarray:
    """Reason code per row (0 = accepted); the first failing rule wins."""
    missing_user = ~_valid(m.user_id)
    bad_ts = ~m.ts.ok
    out_of_range = m.ts.ok & ((m.ts.us < rules.min_us) | (m.ts.us >= rules.as_of_us))
    missing_event = ~_valid(m.event)
    if rules.vocabulary is not None:
        known = _np_bool(pc.is_in(m.event, value_set=pa.array(rules.vocabulary, pa.string())))
        unknown_event = ~missing_event & ~known
    else:
        unknown_event = np.zeros(m.n, dtype=bool)
    amount = m.amount
    negative = (
        ~np.isnan(amount.values) & (amount.values < 0)
        if not rules.allow_negative_amount
        else np.zeros(m.n, bool)
    )
    with np.errstate(invalid="ignore"):
        too_large = np.abs(amount.values) > AMOUNT_LIMIT  # NaN (missing) compares false
    too_long = np.zeros(m.n, dtype=bool)
    for _name, arr in _texts_of(m):
        too_long |= _np_bool(pc.fill_null(pc.greater(pc.utf8_length(arr), MAX_TEXT_CHARS), False))
    conditions = [
        missing_user,
        bad_ts,
        out_of_range,
        missing_event,
        unknown_event,
        amount.wrong,
        amount.non_finite,
        negative,
        too_large,
        too_long,
    ]
    return np.select(conditions, list(range(1, len(conditions) + 1)), 0).astype(np.int8)


def explain(m: MappedEvents, codes: np.ndarray, idx: np.ndarray, rules: Rules) -> list[str]:
    """One line per rejected row saying exactly what was wrong."""
    details: list[str] = [""] * len(idx)
    by_code: dict[int, list[int]] = {}
    for pos, i in enumerate(idx):
        by_code.setdefault(int(codes[i]), []).append(pos)
    for code, positions in by_code.items():
        reason = ROW_REASONS[code - 1]
        rows = idx[positions]
        texts = _describe(reason, m, rows, rules)
        for pos, text in zip(positions, texts):
            details[pos] = text
    return details


def _describe(reason: str, m: MappedEvents, rows: np.ndarray, rules: Rules) -> list[str]:
    take = pa.array(rows, pa.int64())
    if reason == MISSING_USER_ID:
        return [f"user_id is empty ({describe_spec(rules.user_id_spec)})"] * len(rows)
    if reason == BAD_TIMESTAMP:
        texts = _texts(m.ts_text.take(take))
        return [
            "timestamp is empty"
            if m.ts.empty[i]
            else f"timestamp {t!r} matches none of {list(rules.ts_formats)}"
            for i, t in zip(rows, texts)
        ]
    if reason == TIMESTAMP_OUT_OF_RANGE:
        out = []
        for i in rows:
            us = int(m.ts.us[i])
            if us < rules.min_us:
                out.append(f"timestamp {iso_utc(us)} is before min_ts {iso_utc(rules.min_us)}")
            else:
                out.append(
                    f"timestamp {iso_utc(us)} is at or after as_of {iso_utc(rules.as_of_us)}"
                )
        return out
    if reason == MISSING_EVENT:
        return [f"event is empty ({describe_spec(rules.event_spec)})"] * len(rows)
    if reason == UNKNOWN_EVENT:
        vocab = list(rules.vocabulary or ())
        shown = ", ".join(vocab[:12]) + (", ..." if len(vocab) > 12 else "")
        return [
            f"event {e!r} is not in the vocabulary [{shown}]"
            for e in m.event.take(take).to_pylist()
        ]
    if reason in (WRONG_TYPE, NON_FINITE_AMOUNT):
        return m.amount.describe(rows)
    if reason == NEGATIVE_AMOUNT:
        return [
            f"amount {float(m.amount.values[i])!r} is negative and the source allows no negative amounts"
            for i in rows
        ]
    if reason == AMOUNT_OUT_OF_RANGE:
        return [f"amount {float(m.amount.values[i])!r} is beyond +-{AMOUNT_LIMIT:g}" for i in rows]
    if reason == TEXT_TOO_LONG:
        out = []
        for i in rows:
            for name, arr in _texts_of(m):
                value = arr[int(i)].as_py()
                if value is not None and len(value) > MAX_TEXT_CHARS:
                    out.append(f"{name} has {len(value):,} characters; the limit is {MAX_TEXT_CHARS}")
                    break
        return out
    raise AssertionError(reason)  # pragma: no cover


def _texts_of(m: MappedEvents) -> list[tuple[str, pa.Array]]:
    """The event's text fields, each under :data:`MAX_TEXT_CHARS`."""
    return [("user_id", m.user_id), ("event", m.event), *m.optional.items()]


def accepted_table(m: MappedEvents, ok: np.ndarray) -> pa.Table:
    """The accepted rows in the event contract's schema."""
    mask = pa.array(ok)
    amount = m.amount.values[ok]
    cols = {
        "user_id": m.user_id.filter(mask),
        "ts": pa.array(m.ts.us[ok], pa.int64()).cast(EVENT_ARROW_SCHEMA.field("ts").type),
        "event": m.event.filter(mask),
        "amount": pa.array(amount, pa.float64(), mask=np.isnan(amount)),
        **{name: m.optional[name].filter(mask) for name in OPTIONAL_STRING_FIELDS},
    }
    return pa.table(cols, schema=EVENT_ARROW_SCHEMA)


def describe_spec(spec: FieldSpec) -> str:
    if spec.column is not None:
        return f"column '{spec.column}'"
    if spec.columns is not None:
        return "columns " + ", ".join(f"'{c}'" for c in spec.columns)
    if spec.multiply is not None:
        return "product of " + ", ".join(f"'{c}'" for c in spec.multiply)
    return f"constant {spec.const!r}"


def _texts(arr: pa.Array) -> list[str | None]:
    if not pa.types.is_string(arr.type):
        arr = arr.cast(pa.string())
    return arr.to_pylist()


def _valid(arr: pa.Array) -> np.ndarray:
    return _np_bool(pc.is_valid(arr))


def _np_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
