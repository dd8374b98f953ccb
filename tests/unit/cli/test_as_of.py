"""One meaning of ``--as-of``: everything before that date's midnight, UTC, for every command."""

from __future__ import annotations

import datetime as dt

import pytest

from churnkit.cli import parse_as_of
from churnkit.contracts import as_of_cutoff
from churnkit.errors import ChurnkitError


def test_a_date_is_its_midnight_and_a_timestamp_is_taken_as_given():
    assert parse_as_of("2024-05-01") == as_of_cutoff(dt.date(2024, 5, 1)) == dt.datetime(2024, 5, 1, tzinfo=dt.UTC)
    assert parse_as_of("2024-05-01T06:30") == dt.datetime(2024, 5, 1, 6, 30, tzinfo=dt.UTC)
    assert parse_as_of("2024-05-01T06:30+02:00") == dt.datetime(2024, 5, 1, 4, 30, tzinfo=dt.UTC)
    assert parse_as_of(None) is None
    with pytest.raises(ChurnkitError, match="--as-of"):
        parse_as_of("2024-13-01")
    with pytest.raises(ChurnkitError, match="--as-of"):
        parse_as_of("soon")


def test_ingest_as_of_a_date_keeps_that_day_out(tmp_path):
    """As for scores: ``ingest --as-of D`` keeps events before D's midnight, so the events a
    ``score --as-of D`` sees are exactly the ones ingested with the same date."""
    from typer.testing import CliRunner

    from churnkit.cli import app

    log = tmp_path / "log.csv"
    log.write_text("user_id,ts,event\nu1,2024-04-30T23:59:59,view\nu1,2024-05-01T00:00:00,view\n")
    src = tmp_path / "src.yaml"
    src.write_text("name: plain\nfields: {user_id: user_id, ts: ts, event: event}\n")
    res = CliRunner().invoke(app, ["--workspace", str(tmp_path / "ws"), "ingest", str(log), "--source", str(src),
                                   "--as-of", "2024-05-01", "--json"])
    assert res.exit_code == 0, res.output
    assert '"accepted": 1' in res.output and '"timestamp_out_of_range": 1' in res.output
