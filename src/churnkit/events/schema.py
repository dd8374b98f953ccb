"""Column names, Arrow schemas and rejection reason codes shared by the ingest modules.

Kept in one place so the writer, the validator, the quarantine and later readers agree
on names and types without importing each other.
"""

from __future__ import annotations

import pyarrow as pa

UTC_US = pa.timestamp("us", tz="UTC")

OPTIONAL_STRING_FIELDS: tuple[str, ...] = ("category", "channel", "campaign_id", "variant")
"""Contract columns that are always present in the output, null where the source has none."""

EVENT_COLUMNS: tuple[str, ...] = ("user_id", "ts", "event", "amount", *OPTIONAL_STRING_FIELDS)

EVENT_SCHEMA = pa.schema(
    [
        pa.field("user_id", pa.string(), nullable=False),
        pa.field("ts", UTC_US, nullable=False),
        pa.field("event", pa.string(), nullable=False),
        pa.field("amount", pa.float64()),
        *[pa.field(name, pa.string()) for name in OPTIONAL_STRING_FIELDS],
    ]
)

QUARANTINE_SCHEMA = pa.schema(
    [
        pa.field("table", pa.string()),
        pa.field("source_file", pa.string()),
        pa.field("line", pa.int64()),
        pa.field("reason", pa.string()),
        pa.field("detail", pa.string()),
        pa.field("raw", pa.string()),
    ]
)
"""``line`` is the 1-based line of a text file (where a record starts) or the 1-based row of a
Parquet file; ``raw`` is the line text, or the row as JSON for Parquet."""

# Rejection reasons. Events are checked in the order of validate.ROW_REASONS (after
# malformed_row, which the reader decides); users in users.UsersTable.
MALFORMED_ROW = "malformed_row"
MISSING_USER_ID = "missing_user_id"
BAD_TIMESTAMP = "bad_timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
MISSING_EVENT = "missing_event"
UNKNOWN_EVENT = "unknown_event"
WRONG_TYPE = "wrong_type"
NON_FINITE_AMOUNT = "non_finite_amount"
NEGATIVE_AMOUNT = "negative_amount"
CONFLICTING_USER_ID = "conflicting_user_id"


def users_schema(attributes: list[str]) -> pa.Schema:
    """The users table: id, signup time (UTC, null if the source has none), string attributes."""
    return pa.schema(
        [
            pa.field("user_id", pa.string(), nullable=False),
            pa.field("signup_ts", UTC_US),
            *[pa.field(name, pa.string()) for name in attributes],
        ]
    )
