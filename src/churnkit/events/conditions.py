"""A source's ``cases``: conditions on source columns that set a text field, vectorised.

A case holds on a row when every one of its conditions does; the first case that holds sets
the value (e.g. ``event: refund`` where the invoice starts with ``C``), and rows no case
matches keep the value the field's column or constant gave. Text tests see the stripped
value (empty is missing, and no text test holds on a missing value); number tests are false
where the value is not a number.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnkit.config import Case, Condition
from churnkit.events.values import as_text, column, np_bool, parse_numbers


def holds(columns: dict[str, pa.Array], cond: Condition, n: int, clean: bool) -> np.ndarray:
    """Whether ``cond`` holds on each row (all of its tests)."""
    raw = column(columns, cond.column, n)
    text = as_text(raw, clean)
    numbers: np.ndarray | None = None
    out = np.ones(n, dtype=bool)
    for test, arg in cond.tests().items():
        if test in ("less_than", "at_most", "greater_than", "at_least") or (
            test == "equals" and not isinstance(arg, str)
        ):
            if numbers is None:
                numbers = parse_numbers(raw, cond.column, clean).values
            with np.errstate(invalid="ignore"):  # NaN (not a number) compares false
                out &= _compare(numbers, test, float(arg))
        elif test == "empty":
            missing = ~np_bool(pc.is_valid(text))
            out &= missing if arg else ~missing
        else:
            out &= np_bool(_text_test(text, test, arg))
    return out


def _compare(v: np.ndarray, test: str, arg: float) -> np.ndarray:
    if test == "equals":
        return v == arg
    if test == "less_than":
        return v < arg
    if test == "at_most":
        return v <= arg
    if test == "greater_than":
        return v > arg
    return v >= arg


def _text_test(text: pa.Array, test: str, arg: object) -> pa.Array:
    if test == "equals":
        return pc.equal(text, pa.scalar(arg, pa.string()))
    if test == "one_of":
        return pc.is_in(text, value_set=pa.array(arg, pa.string()))
    if test == "starts_with":
        return pc.starts_with(text, arg)
    if test == "ends_with":
        return pc.ends_with(text, arg)
    if test == "contains":
        return pc.match_substring(text, arg)
    if test == "matches":
        return pc.match_substring_regex(text, arg)
    raise AssertionError(test)  # pragma: no cover


def apply_cases(
    values: pa.Array, cases: list[Case] | None, columns: dict[str, pa.Array], n: int, clean: bool
) -> pa.Array:
    """``values`` (text) with each row set by the first case that holds on it."""
    if not cases:
        return values
    out = values
    for case in reversed(cases):  # the first case applied last wins
        mask = np.logical_and.reduce([holds(columns, c, n, clean) for c in case.when])
        if mask.any():
            out = pc.if_else(pa.array(mask), pa.scalar(case.value, pa.string()), out)
    return out

