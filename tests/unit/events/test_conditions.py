"""A source's cases (conditions on columns), ids as written and refund amounts, on Arrow columns."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from churnkit.config import Condition, EventFields, FieldSpec, SourceConfig, parse_model
from churnkit.errors import ConfigError
from churnkit.events.conditions import holds
from churnkit.events.mapping import map_events, required_columns, text_field
from churnkit.events.values import id_text


def cols(**columns):
    return {k: pa.array(v, pa.string()) for k, v in columns.items()}


INVOICES = cols(
    inv=["536365", "C536379", "c1", None, "A563185", "C9"],
    qty=["6", "-1", "x", "0", "0.0", "-2"],
)


def test_each_test_on_text_and_numbers():
    def on(**test):
        return holds(INVOICES, Condition(**test), 6, True).tolist()

    assert on(column="inv", starts_with="C") == [False, True, False, False, False, True]  # case-sensitive
    assert on(column="inv", ends_with="9") == [False, True, False, False, False, True]
    assert on(column="inv", contains="536") == [True, True, False, False, False, False]
    assert on(column="inv", matches="^[Cc]") == [False, True, True, False, False, True]
    assert on(column="inv", one_of=["c1", "C9"]) == [False, False, True, False, False, True]
    assert on(column="inv", equals="C9") == [False] * 5 + [True]
    assert on(column="inv", empty=True) == [False, False, False, True, False, False]
    assert on(column="inv", empty=False) == [True, True, True, False, True, True]
    # numbers: "x" is no number, so every number test is false on it
    assert on(column="qty", less_than=0) == [False, True, False, False, False, True]
    assert on(column="qty", at_least=0) == [True, False, False, True, True, False]
    assert on(column="qty", equals=0) == [False, False, False, True, True, False]  # a YAML number
    assert on(column="qty", equals="0") == [False, False, False, True, False, False]  # quoted: text
    # several tests in one condition all hold
    assert on(column="qty", greater_than=-2, at_most=0) == [False, True, False, True, True, False]
    # a column a JSON line lacks is missing on every row
    assert on(column="nowhere", empty=True) == [True] * 6


def test_first_case_that_holds_sets_the_value_after_renames():
    spec = FieldSpec.model_validate({
        "column": "inv",
        "values": {"536365": "purchase"},
        "cases": [
            {"when": [{"column": "inv", "starts_with": "C"}, {"column": "qty", "less_than": -1}], "value": "big_refund"},
            {"when": {"column": "inv", "starts_with": "C"}, "value": "refund"},
            {"when": {"column": "qty", "less_than": 0}, "value": "never_reached_for_C"},
        ],
    })
    got = text_field(INVOICES, spec, 6, True).to_pylist()
    assert got == ["purchase", "refund", "c1", None, "A563185", "big_refund"]


def test_case_columns_are_required_and_optional_columns_are_not():
    fields = EventFields.model_validate({
        "user_id": "cust",
        "ts": "t",
        "event": {"const": "purchase", "cases": [{"when": {"column": "inv", "starts_with": "C"}, "value": "refund"}]},
        "order_id": {"column": "inv", "optional": True},
        "category": {"column": "cat", "optional": True},
    })
    assert required_columns(fields) == {"cust": "fields.user_id", "t": "fields.ts", "inv": "fields.event"}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"event": {"const": "x", "cases": [{"when": {"column": "a"}, "value": "y"}]}}, "needs a test"),
        ({"event": {"const": "x", "cases": [{"when": {"column": "a", "matches": "(?=x)"}, "value": "y"}]}},
         "not a regular expression"),
        ({"event": {"const": "x", "cases": [{"when": [], "value": "y"}]}}, "at least one condition"),
        ({"amount": {"column": "q", "cases": [{"when": {"column": "a", "empty": True}, "value": "1"}]}},
         "amount is not a text field"),
        ({"event": {"const": "x", "optional": True}}, "optional applies to a single column"),
    ],
)
def test_bad_cases_are_one_line_config_errors(fields, says):
    data = {"name": "s", "fields": {"user_id": "u", "ts": "t", "event": "e", **fields}}
    with pytest.raises(ConfigError) as err:
        parse_model(data, SourceConfig, "s.yaml")
    assert says in str(err.value) and "\n" not in str(err.value)


def test_ids_as_written_but_never_as_floats():
    text = pa.array(["17850.0", "17850", " 00012.00 ", "C536379", "1.50", "-3.0", "1e3", "", None])
    assert id_text(text).to_pylist() == ["17850", "17850", "00012", "C536379", "1.50", "-3", "1e3", None, None]
    floats = pa.array([17850.0, None, float("nan"), 26984851472.0, 1.5, float("inf"), 2.0**60], pa.float64())
    assert id_text(floats).to_pylist() == ["17850", None, None, "26984851472", "1.5", None, "1.152921504606847e+18"]
    assert id_text(pa.array([7, None], pa.int64())).to_pylist() == ["7", None]


def test_refund_amounts_are_stored_positive_and_ids_read_as_ids():
    fields = EventFields.model_validate({
        "user_id": "cust",
        "ts": "t",
        "event": {"const": "purchase", "cases": [{"when": {"column": "inv", "starts_with": "C"}, "value": "refund"}]},
        "amount": {"multiply": ["qty", "price"]},
        "order_id": "inv",
    })
    c = cols(cust=["17850.0", "17850.0", "13047.0"], t=["2010-12-01"] * 3, inv=["536365", "C536379", "C536380"],
             qty=["6", "-2", "3"], price=["2.5", "4.25", "1.0"])
    m = map_events(c, fields, 3, True)
    assert m.event.to_pylist() == ["purchase", "refund", "refund"]
    np.testing.assert_array_equal(m.amount.values, [15.0, 8.5, 3.0])  # a refund is its size either way
    assert m.user_id.to_pylist() == ["17850", "17850", "13047"]
    assert m.optional["order_id"].to_pylist() == ["536365", "C536379", "C536380"]
