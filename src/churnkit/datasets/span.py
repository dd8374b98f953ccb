"""What events a table holds: its span (first day, data end) and a content fingerprint.

One definition of the *data end*, the day after the last event: outcome windows must end
by it to be complete, and it is the latest date anything can be scored as of.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import ibis
import ibis.expr.types as ir
import pandas as pd

from churnkit.errors import ChurnkitError


@dataclass(frozen=True)
class DataSpan:
    """The days a table of events covers: ``first`` (the first event's day) to ``end``
    (the day after the last event's, exclusive)."""

    first: dt.date
    end: dt.date

    def check_as_of(self, as_of: dt.date) -> None:
        """As-of dates must see some history and no future: ``first < as_of <= end``."""
        if as_of <= self.first:
            raise ChurnkitError(
                f"as-of {as_of} is before the data: the first events are on {self.first} (score after {self.first})"
            )
        if as_of > self.end:
            raise ChurnkitError(
                f"as-of {as_of} is after the data end: the last events are on {self.end - dt.timedelta(days=1)}"
                f" (score at {self.end} at the latest)"
            )


def _span(first: Any, last: Any) -> DataSpan:
    if first is None or pd.isna(first):
        raise ChurnkitError("the events table is empty: run churnkit ingest first")
    return DataSpan(pd.Timestamp(first).date(), pd.Timestamp(last).date() + dt.timedelta(days=1))


def data_span(events: ir.Table) -> DataSpan:
    """The span of an events table (one min/max aggregate)."""
    row = events.aggregate(first=events.ts.min(), last=events.ts.max()).execute().iloc[0]
    return _span(row["first"], row["last"])


def fingerprint_span(fp: dict[str, Any]) -> DataSpan:
    """The span recorded in a :func:`fingerprint` (no second scan)."""
    return _span(fp["first_ts"], fp["last_ts"])


_HEX = "0123456789abcdef"
_DIGEST_HEX_CHARS = 7
"""Each row contributes the first 28 bits of its md5: the int64 sum is exact up to 2**35 rows."""


def _row_digest(events: ir.Table) -> ir.IntegerValue:
    """An integer per row from md5 of a canonical text of it, the same on every engine.

    Only portable pieces go into the text: epoch seconds and microseconds as integers (a
    timestamp cast to string carries the zone on DuckDB and not on Spark), the amount in
    millionths as an integer (float-to-string formats differ), and the strings as they are.
    ``.hash()`` is not used: it is a different function on each backend.
    """
    ts = events.ts
    whole = ts.truncate("s")
    text = (
        events.user_id.fill_null("")
        + "|" + whole.epoch_seconds().cast("int64").cast("string").fill_null("")
        + "." + ts.delta(whole, unit="microsecond").cast("int64").cast("string").fill_null("")
        + "|" + events.event.fill_null("")
        + "|" + (events.amount * 1_000_000).round().cast("int64").cast("string").fill_null("")
    )
    md5 = text.hexdigest("md5")
    hexdigits = ibis.literal(_HEX)
    value = hexdigits.find(md5.substr(0, 1))
    for k in range(1, _DIGEST_HEX_CHARS):
        value = value * 16 + hexdigits.find(md5.substr(k, 1))
    return value.cast("int64")


def fingerprint(events: ir.Table) -> dict[str, Any]:
    """Content fingerprint of an events table: stable across file layout, row order and
    engine (DuckDB and Spark give the same dict for the same rows)."""
    row = events.aggregate(
        rows=events.count(),
        users=events.user_id.nunique(),
        first_ts=events.ts.min(),
        last_ts=events.ts.max(),
        digest=_row_digest(events).sum(),
    ).execute().iloc[0]

    def iso(v: Any) -> str | None:
        if pd.isna(v):
            return None
        t = pd.Timestamp(v)
        # Spark hands back zone-less timestamps; every connection runs in UTC
        return (t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")).isoformat()

    return {
        "rows": int(row["rows"]),
        "users": int(row["users"]),
        "first_ts": iso(row["first_ts"]),
        "last_ts": iso(row["last_ts"]),
        "digest": int(row["digest"]) % 1_000_000_007 if not pd.isna(row["digest"]) else 0,
    }
