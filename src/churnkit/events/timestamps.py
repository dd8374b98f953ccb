"""Timestamp parsing: a column of any type in, UTC microseconds out, vectorised per format.

Text values are tried against the source's formats in order; the first that parses a value
wins. Formats: a strftime pattern (strict: the whole value must match, invalid dates fail),
``iso8601`` (date, date-time, optional fraction and offset), ``unix_s`` / ``unix_ms`` (numbers,
fractions allowed). Parquet/Arrow timestamp and date columns are taken as they are.

Time zones: a value with an explicit offset (``+02:00``, ``Z``, or ``%z`` in a pattern) keeps
it. A naive value is local time in the source's ``timezone``. At a DST change, a time that
occurs twice (fall back) is read as the first occurrence (daylight time) and a time that does
not exist (spring forward) is moved forward to the end of the gap (02:30 -> 03:00). A
date-only format yields local midnight. Everything is stored in UTC.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnkit.errors import ConfigError
from churnkit.events.fixedwidth import compile_pattern, parse_fixed

UNIX_FORMATS = {"unix_s": 1_000_000, "unix_ms": 1_000}
ISO8601 = "iso8601"
# A time part followed by an offset; a bare date's "-01" must not count as an offset.
_OFFSET_RE = r"[T\s]\d{1,2}(:?\d{2})?(:?\d{2})?([.,]\d+)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)$"
_YEAR_RE = r"^[0-9]{4}"
"""An ISO 8601 time starts with a four-digit year."""
_NUMBER_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_MIN_S, _MAX_S = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31T23:59:59 UTC
UTC_NAMES = {"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Z"}


@dataclass
class ParsedTimestamps:
    us: np.ndarray
    """int64 microseconds since the epoch, UTC (meaningless where ``ok`` is false)."""
    ok: np.ndarray
    empty: np.ndarray
    """The value was missing (null/blank): reported differently from an unparseable one."""


def parse_timestamps(arr: pa.Array, formats: list[str], timezone: str) -> ParsedTimestamps:
    n = len(arr)
    t = arr.type
    if pa.types.is_timestamp(t) or pa.types.is_date(t):
        valid = _np_bool(pc.is_valid(arr))
        if pa.types.is_date(t):
            arr = arr.cast(pa.timestamp("us"))
        elif t.tz is not None:
            arr = arr.cast(pa.timestamp("us", tz="UTC"), safe=False)
            us = _ints(arr)
            return ParsedTimestamps(us, valid, ~valid)
        else:
            arr = arr.cast(pa.timestamp("us"), safe=False)
        us, ok = _localize(_ints(arr), valid, timezone)
        return ParsedTimestamps(us, ok, ~valid)
    text = _text(arr)
    empty = ~_np_bool(pc.is_valid(text))
    us = np.zeros(n, dtype=np.int64)
    ok = np.zeros(n, dtype=bool)
    todo = ~empty
    for fmt in formats:
        idx = np.flatnonzero(todo)
        if len(idx) == 0:
            break
        sub = text if len(idx) == n else text.take(pa.array(idx))
        got_us, got_ok = parse_format(sub, fmt, timezone)
        hit = idx[got_ok]
        us[hit] = got_us[got_ok]
        ok[hit] = True
        todo[hit] = False
    return ParsedTimestamps(us, ok, empty)


def parse_format(text: pa.Array, fmt: str, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Parse non-null strings with one format: (microseconds UTC, parsed?)."""
    if fmt in UNIX_FORMATS:
        return _parse_unix(text, UNIX_FORMATS[fmt])
    if fmt == ISO8601:
        aware = _np_bool(pc.match_substring_regex(text, _OFFSET_RE))
        dated = _np_bool(pc.match_substring_regex(text, _YEAR_RE))  # pandas reads "-1" as year -1
        us = np.zeros(len(text), dtype=np.int64)
        ok = np.zeros(len(text), dtype=bool)
        for mask, is_aware in ((dated & aware, True), (dated & ~aware, False)):
            idx = np.flatnonzero(mask)
            if len(idx):
                got_us, got_ok = _pandas_parse(
                    text.take(pa.array(idx)), "ISO8601", is_aware, timezone
                )
                us[idx], ok[idx] = got_us, got_ok
        return us, ok
    aware = "%z" in fmt or "%Z" in fmt
    pattern = None if aware else compile_pattern(fmt)
    if pattern is None:
        return _pandas_parse(text, fmt, aware, timezone)
    # Plain zero-padded values are read with numpy; pandas reads the rest (fixedwidth's doc).
    local_us, ok = parse_fixed(text, pattern)
    rest = np.flatnonzero(~ok & _np_bool(pc.is_valid(text)))
    if len(rest):
        got_us, got_ok = _pandas_parse(text.take(pa.array(rest)), fmt, False, "UTC")
        local_us[rest], ok[rest] = got_us, got_ok
    return _localize(local_us, ok, timezone)


def _pandas_parse(
    text: pa.Array, fmt: str, aware: bool, timezone: str
) -> tuple[np.ndarray, np.ndarray]:
    series = pd.Series(pd.arrays.ArrowExtensionArray(text.cast(pa.string())))
    try:
        parsed = pd.to_datetime(series, format=fmt, errors="coerce", utc=aware)
    except ValueError as err:
        if fmt == "ISO8601":
            raise
        raise ConfigError(
            f"timestamp format {fmt!r} is not a valid strftime pattern ({err})"
        ) from None
    ok = parsed.notna().to_numpy()
    if aware:
        naive = parsed.dt.tz_convert("UTC").dt.tz_localize(None)
        return _series_us(naive), ok
    us, ok2 = _localize(_series_us(parsed), ok, timezone)
    return us, ok2


def _localize(local_us: np.ndarray, ok: np.ndarray, timezone: str) -> tuple[np.ndarray, np.ndarray]:
    """Wall-clock microseconds in ``timezone`` -> UTC microseconds (DST rules in the module doc)."""
    if timezone in UTC_NAMES:
        return local_us, ok
    naive = pd.Series(np.where(ok, local_us, 0).astype("datetime64[us]"))
    localized = naive.dt.tz_localize(
        timezone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
    )
    utc = localized.dt.tz_convert("UTC").dt.tz_localize(None)
    return _series_us(utc), ok & utc.notna().to_numpy()


def _parse_unix(text: pa.Array, us_per_unit: int) -> tuple[np.ndarray, np.ndarray]:
    numeric = _np_bool(pc.match_substring_regex(text, _NUMBER_RE))
    safe = pc.if_else(pa.array(numeric), text, pa.scalar("0"))
    values = np.asarray(
        pc.cast(safe, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
    )
    seconds = values * (us_per_unit / 1_000_000)
    ok = numeric & np.isfinite(values) & (seconds >= _MIN_S) & (seconds <= _MAX_S)
    us = np.zeros(len(values), dtype=np.int64)
    us[ok] = np.round(values[ok] * us_per_unit).astype(np.int64)
    return us, ok


def _text(arr: pa.Array) -> pa.Array:
    if pa.types.is_nested(arr.type):  # a JSON object or list where a time belongs: no format matches
        return pa.nulls(len(arr), pa.string()).fill_null("<nested value>")
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        arr = arr.cast(pa.string())
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), pa.scalar(None, arr.type), arr)


def _series_us(s: pd.Series) -> np.ndarray:
    values = s.to_numpy(dtype="datetime64[us]", na_value=np.datetime64("NaT"))
    return values.astype(np.int64)


def _ints(arr: pa.Array) -> np.ndarray:
    return np.asarray(
        arr.cast(pa.int64()).fill_null(0).to_numpy(zero_copy_only=False), dtype=np.int64
    )


def _np_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
