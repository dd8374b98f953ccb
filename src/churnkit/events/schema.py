"""The quarantine's schema and the rejection reason codes shared by the ingest modules.

The event columns and types come from :mod:`churnkit.contracts` (the one definition);
the quarantine and the reasons live here.
"""

from __future__ import annotations

import pyarrow as pa

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
# malformed_row, which the reader decides); users in users.UsersTable; assignments in
# assignments.AssignmentsTable.
MALFORMED_ROW = "malformed_row"
MISSING_USER_ID = "missing_user_id"
BAD_TIMESTAMP = "bad_timestamp"
TIMESTAMP_OUT_OF_RANGE = "timestamp_out_of_range"
MISSING_EVENT = "missing_event"
UNKNOWN_EVENT = "unknown_event"
WRONG_TYPE = "wrong_type"
NON_FINITE_AMOUNT = "non_finite_amount"
NEGATIVE_AMOUNT = "negative_amount"
AMOUNT_OUT_OF_RANGE = "amount_out_of_range"
TEXT_TOO_LONG = "text_too_long"
CONFLICTING_USER_ID = "conflicting_user_id"
MISSING_CAMPAIGN_ID = "missing_campaign_id"
MISSING_VARIANT = "missing_variant"
BAD_HORIZON = "bad_horizon"
BAD_CONTROL = "bad_control"
CONFLICTING_ASSIGNMENT = "conflicting_assignment"
CONFLICTING_CONTROL = "conflicting_control"
