"""Request models: the posted event is the event contract, checked before any batching."""

from __future__ import annotations

import datetime as dt

import pytest
from pydantic import ValidationError

from churnkit.contracts import EVENT_FIELDS, SCORE_COLUMNS
from churnkit.service.schemas import Event, FeatureRow, Scores, UserIds
from churnkit.service.state import Limits


def test_event_model_is_the_contract():
    assert list(Event.model_fields) == [f.name for f in EVENT_FIELDS]
    required = {name for name, f in Event.model_fields.items() if f.is_required()}
    assert required == {f.name for f in EVENT_FIELDS if f.required}
    e = Event.model_validate({"user_id": "u", "ts": "2024-05-01T10:00:00", "event": "purchase", "amount": 3})
    assert e.ts == dt.datetime(2024, 5, 1, 10, tzinfo=dt.UTC)  # no offset: UTC


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"user_id": "u", "ts": "2024-05-01", "event": "teleport"}, "event"),
        ({"user_id": "u", "ts": "2024-05-01", "event": "purchase", "amount": -1}, "amount"),
        ({"user_id": "u", "ts": "2024-05-01", "event": "view", "colour": "red"}, "colour"),
        ({"ts": "2024-05-01", "event": "view"}, "user_id"),
        ({"user_id": "u", "ts": "2024-05-01", "event": "view", "amount": "3"}, "amount"),
    ],
)
def test_bad_events_name_the_field(body, field):
    with pytest.raises(ValidationError) as err:
        Event.model_validate(body)
    assert field in str(err.value)


def test_score_row_is_the_contracts_score_columns():
    assert [c for c in Scores.model_fields if c in SCORE_COLUMNS] == list(SCORE_COLUMNS)


def test_limits_apply_outside_a_running_service_with_their_defaults():
    from pydantic import TypeAdapter

    ids = TypeAdapter(UserIds)
    assert ids.validate_python(["a"]) == ["a"]
    with pytest.raises(ValidationError, match="at most"):
        ids.validate_python(["a"] * (Limits().max_rows + 1))
    with pytest.raises(ValidationError):
        ids.validate_python([])
    # no service running: feature names are checked once models are loaded, not before
    assert FeatureRow.model_validate({"features": {"x": 1.0, "y": None}}).features == {"x": 1.0, "y": None}
