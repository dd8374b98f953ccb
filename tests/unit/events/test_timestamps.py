"""Timestamp parsing: formats in order, time zones, DST, explicit offsets, epochs, typed columns."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from churnkit.errors import ConfigError
from churnkit.events.timestamps import parse_timestamps

UTC = dt.UTC


def parse(values, formats, tz="UTC", type=None):
    r = parse_timestamps(pa.array(values, type), formats, tz)
    out = []
    for us, ok, empty in zip(r.us, r.ok, r.empty):
        if ok:
            out.append(dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(microseconds=int(us)))
        else:
            out.append("empty" if empty else "bad")
    return out


def utc(*args):
    return dt.datetime(*args, tzinfo=UTC)


def test_date_only_pattern_is_local_midnight_and_strict():
    got = parse(["19970101", " 19970131 ", "19971301", "1997010", "19970230", "", None], ["%Y%m%d"])
    assert got == [utc(1997, 1, 1), utc(1997, 1, 31), "bad", "bad", "bad", "empty", "empty"]
    assert parse(["19970101"], ["%Y%m%d"], "America/New_York") == [utc(1997, 1, 1, 5)]


def test_formats_are_tried_in_order():
    got = parse(["2024-03-01", "01/03/2024", "1709251200"], ["%Y-%m-%d", "%d/%m/%Y", "unix_s"])
    assert got == [utc(2024, 3, 1), utc(2024, 3, 1), utc(2024, 3, 1)]
    # the first format that parses wins, even where a later one would read it differently
    assert parse(["20240301"], ["%Y%m%d", "unix_s"]) == [utc(2024, 3, 1)]


def test_naive_times_are_local_and_offsets_are_kept():
    got = parse(
        [
            "2024-07-01 12:00:00",
            "2024-07-01T12:00:00+02:00",
            "2024-07-01T12:00:00Z",
            "2024-01-15 12:00:00",
        ],
        ["iso8601"],
        "America/New_York",
    )
    assert got == [
        utc(2024, 7, 1, 16),
        utc(2024, 7, 1, 10),
        utc(2024, 7, 1, 12),
        utc(2024, 1, 15, 17),
    ]


def test_dst_ambiguous_is_first_occurrence_and_gap_shifts_forward():
    tz = "America/New_York"
    # 2024-11-03 01:30 happens twice (EDT then EST): the first, EDT = UTC-4
    assert parse(["2024-11-03 01:30:00"], ["iso8601"], tz) == [utc(2024, 11, 3, 5, 30)]
    # 2024-03-10 02:30 does not exist: moved to 03:00 EDT = 07:00 UTC
    assert parse(["2024-03-10 02:30:00"], ["%Y-%m-%d %H:%M:%S"], tz) == [utc(2024, 3, 10, 7)]


def test_strftime_with_offset_directive():
    got = parse(
        ["01/Mar/2024:10:00:00 +0100", "01/Mar/2024:10:00:00"],
        ["%d/%b/%Y:%H:%M:%S %z"],
        "Asia/Tokyo",
    )
    assert got == [utc(2024, 3, 1, 9), "bad"]


def test_iso8601_variants():
    got = parse(
        [
            "2024-03-01",
            "2024-03-01T10:00",
            "2024-03-01 10:00:00.25",
            "2024-03-01T10:00:00-05:30",
            "2024-13-01",
            "x",
        ],
        ["iso8601"],
    )
    assert got[:4] == [
        utc(2024, 3, 1),
        utc(2024, 3, 1, 10),
        utc(2024, 3, 1, 10, 0, 0, 250000),
        utc(2024, 3, 1, 15, 30),
    ]
    assert got[4:] == ["bad", "bad"]


def test_unix_epochs():
    got = parse(["1700000000", "1700000000.5", "-1", "abc", "1e30"], ["unix_s"])
    assert got[:3] == [
        utc(2023, 11, 14, 22, 13, 20),
        utc(2023, 11, 14, 22, 13, 20, 500000),
        utc(1969, 12, 31, 23, 59, 59),
    ]
    assert got[3:] == ["bad", "bad"]
    assert parse(["1700000000123"], ["unix_ms"]) == [utc(2023, 11, 14, 22, 13, 20, 123000)]
    # numbers in a typed column work too
    assert parse([1700000000], ["unix_s"], type=pa.int64()) == [utc(2023, 11, 14, 22, 13, 20)]


def test_typed_timestamp_columns():
    aware = pa.array([dt.datetime(2024, 1, 1, 12)], pa.timestamp("ms", tz="Europe/Berlin"))
    assert parse(aware, ["iso8601"], "America/New_York") == [
        utc(2024, 1, 1, 12)
    ]  # already an instant
    naive = pa.array([dt.datetime(2024, 1, 1, 12), None], pa.timestamp("ns"))
    assert parse(naive, ["iso8601"], "Europe/Berlin") == [utc(2024, 1, 1, 11), "empty"]
    dates = pa.array([dt.date(2024, 1, 1)], pa.date32())
    assert parse(dates, ["iso8601"], "Europe/Berlin") == [utc(2023, 12, 31, 23)]


def test_invalid_pattern_is_a_config_error():
    with pytest.raises(ConfigError, match="%Q"):
        parse(["x"], ["%Q"])
