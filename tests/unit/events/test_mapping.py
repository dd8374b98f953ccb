"""Field mapping and per-row validation: specs, numbers, and the order of rejection reasons."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa

from churnkit.config import EventFields, FieldSpec
from churnkit.events.mapping import (
    field_values,
    map_amount,
    map_events,
    parse_numbers,
    required_columns,
    text_field,
)
from churnkit.events.validate import (
    ROW_REASONS,
    Rules,
    accepted_table,
    explain,
    to_us,
    validate_events,
)


def cols(**columns):
    return {k: pa.array(v, pa.string()) for k, v in columns.items()}


def test_column_columns_const_and_values():
    c = cols(d=["2024-01-01", "2024-01-02"], t=["10:00", None], e=["buy", "look"])
    assert field_values(c, FieldSpec(columns=["d", "t"]), 2, True).to_pylist() == [
        "2024-01-01 10:00",
        "2024-01-02",
    ]
    assert text_field(c, FieldSpec(const="purchase"), 2, True).to_pylist() == [
        "purchase",
        "purchase",
    ]
    renamed = text_field(c, FieldSpec(column="e", values={"buy": "purchase"}), 2, True)
    assert renamed.to_pylist() == ["purchase", "look"]  # unlisted values pass through
    assert text_field(c, None, 2, True).to_pylist() == [None, None]


def test_numbers_classify_every_value():
    p = parse_numbers(pa.array(["12.5", "", "1e3", "abc", "$5", "nan", "-inf", "1e999", " 7 "]))
    assert p.values[0] == 12.5 and p.values[2] == 1000 and p.values[8] == 7
    assert p.null.tolist() == [False, True, False, False, False, False, False, False, False]
    assert p.wrong.tolist() == [False, False, False, True, True, False, False, False, False]
    assert p.non_finite.tolist() == [False, False, False, False, False, True, True, True, False]
    assert p.describe(np.array([3, 5])) == [
        "amount 'abc' is not a number",
        "amount 'nan' is not finite",
    ]


def test_typed_numbers():
    p = parse_numbers(pa.array([1.5, None, float("inf"), 3], pa.float64()))
    assert p.null.tolist() == [False, True, False, False]
    assert p.non_finite.tolist() == [False, False, True, False]
    assert not p.wrong.any()


def test_multiply_is_a_product_and_names_the_bad_factor():
    c = cols(q=["2", "3", "x", None], p=["1.5", "abc", "2", "2"])  # clean text: empty is null
    a = map_amount(c, FieldSpec(multiply=["q", "p"]), 4, True)
    assert a.values[0] == 3.0
    assert a.wrong.tolist() == [False, True, True, False]
    assert a.null.tolist() == [False, False, False, True]
    assert a.describe(np.array([1, 2])) == [
        "amount factor 'p' 'abc' is not a number",
        "amount factor 'q' 'x' is not a number",
    ]


def test_required_columns_names_the_field():
    fields = EventFields(
        user_id=FieldSpec(column="uid"),
        ts={"columns": ["d", "t"]},
        event=FieldSpec(const="x"),
        amount=FieldSpec(multiply=["q", "p"]),
    )
    assert required_columns(fields) == {
        "uid": "fields.user_id",
        "d": "fields.ts",
        "t": "fields.ts",
        "q": "fields.amount",
        "p": "fields.amount",
    }


def make_rules(**kw):
    base = {
        "min_us": to_us(dt.datetime(1990, 1, 1)),
        "as_of_us": to_us(dt.datetime(2025, 1, 1)),
        "vocabulary": ("view", "purchase"),
        "allow_negative_amount": False,
        "ts_formats": ("iso8601",),
        "user_id_spec": FieldSpec(column="u"),
        "event_spec": FieldSpec(column="e"),
    }
    base.update(kw)
    return Rules(**base)


def test_first_failing_rule_wins_in_the_documented_order():
    # each row breaks every rule from its position on, so only the order decides the reason
    c = cols(
        u=[None, "u", "u", "u", "u", "u", "u", "u", "u"],
        ts=[
            "bad",
            "bad",
            "1980-01-01",
            "2024-01-01",
            "2024-01-01",
            "2024-01-01",
            "2024-01-01",
            "2024-01-01",
            "2024-01-01",
        ],
        e=[None, None, None, None, "zap", "view", "view", "view", "view"],
        a=["x", "x", "x", "x", "x", "x", "nan", "-1", "2"],
    )
    fields = EventFields(
        user_id=FieldSpec(column="u"),
        ts={"column": "ts"},
        event=FieldSpec(column="e"),
        amount=FieldSpec(column="a"),
    )
    m = map_events(c, fields, 9, False)
    rules = make_rules()
    codes = validate_events(m, rules)
    reasons = [ROW_REASONS[k - 1] if k else "ok" for k in codes]
    assert reasons == [
        "missing_user_id",
        "bad_timestamp",
        "timestamp_out_of_range",
        "missing_event",
        "unknown_event",
        "wrong_type",
        "non_finite_amount",
        "negative_amount",
        "ok",
    ]
    details = explain(m, codes, np.flatnonzero(codes), rules)
    assert details[1] == "timestamp 'bad' matches none of ['iso8601']"
    assert details[2].startswith("timestamp 1980-01-01T00:00:00Z is before min_ts")
    assert details[4] == "event 'zap' is not in the vocabulary [view, purchase]"
    table = accepted_table(m, codes == 0)
    assert table.num_rows == 1 and table.column("amount").to_pylist() == [2.0]


def test_optional_rules_are_off_when_not_configured():
    c = cols(u=["u"], ts=["2024-01-01"], e=["anything"], a=["-5"])
    fields = EventFields(
        user_id=FieldSpec(column="u"),
        ts={"column": "ts"},
        event=FieldSpec(column="e"),
        amount=FieldSpec(column="a"),
    )
    m = map_events(c, fields, 1, False)
    assert validate_events(m, make_rules(vocabulary=None, allow_negative_amount=True)).tolist() == [
        0
    ]


def test_as_of_is_exclusive():
    c = cols(
        u=["u", "u"], ts=["2024-12-31T23:59:59.999999Z", "2025-01-01T00:00:00Z"], e=["view", "view"]
    )
    fields = EventFields(
        user_id=FieldSpec(column="u"), ts={"column": "ts"}, event=FieldSpec(column="e")
    )
    m = map_events(c, fields, 2, False)
    assert [ROW_REASONS[k - 1] if k else "ok" for k in validate_events(m, make_rules())] == [
        "ok",
        "timestamp_out_of_range",
    ]


def test_amounts_beyond_the_limit_are_quarantined_either_sign():
    """Two purchases of 1e308 would sum to infinity in the features: such a value is an input
    error, kept out with its own reason, while amounts up to the limit pass."""
    c = cols(u=["u"] * 4, ts=["2024-01-01"] * 4, e=["purchase"] * 4, a=["1e308", "-1e13", "1e12", "-5"])
    fields = EventFields(
        user_id=FieldSpec(column="u"), ts={"column": "ts"}, event=FieldSpec(column="e"), amount=FieldSpec(column="a"),
    )
    m = map_events(c, fields, 4, False)
    rules = make_rules(allow_negative_amount=True)
    codes = validate_events(m, rules)
    assert [ROW_REASONS[k - 1] if k else "ok" for k in codes] == [
        "amount_out_of_range", "amount_out_of_range", "ok", "ok",
    ]
    assert explain(m, codes, np.flatnonzero(codes), rules)[0] == "amount 1e+308 is beyond +-1e+12"
