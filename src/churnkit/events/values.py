"""Source values as the contract reads them: text (stripped, empty = missing), numbers, ids.

Numbers accept plain decimal or scientific notation (``12``, ``-3.5``, ``1e3``); anything
else (``$12``, ``1,234``) is wrong, and ``nan``/``inf`` are reported as non-finite rather than
as text. Ids are text as written, except that an integral float (``17850.0``, what a float
column of customer numbers turns into) is written as the integer (``17850``).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

NULL_STR = pa.scalar(None, pa.string())
_NUMBER_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_NON_FINITE_RE = r"(?i)^[+-]?(nan|inf|infinity)$"
_INTEGRAL_FLOAT_RE = r"^([+-]?\d+)\.0+$"
_EXACT_INT = 2.0**53
"""Floats beyond this are not exact integers: such an id is kept as its float text."""


def as_text(arr: pa.Array, clean: bool = False) -> pa.Array:
    """Any column as stripped strings, empty -> null; ``clean`` skips work already done."""
    if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
        if pa.types.is_null(arr.type):
            return pa.nulls(len(arr), pa.string())
        try:
            arr = arr.cast(pa.string())
        except (pa.ArrowNotImplementedError, pa.ArrowInvalid):
            arr = pa.array(
                [
                    None if v is None else json.dumps(v, default=str, sort_keys=True)
                    for v in arr.to_pylist()
                ],
                pa.string(),
            )
        clean = False
    elif pa.types.is_large_string(arr.type):
        arr = arr.cast(pa.string())
    if clean:
        return arr
    arr = pc.utf8_trim_whitespace(arr)
    return pc.if_else(pc.equal(arr, ""), NULL_STR, arr)


def column(columns: dict[str, pa.Array], name: str, n: int) -> pa.Array:
    """A source column; absent means all missing (JSON objects may omit keys; CSV and Parquet
    files without a needed column were refused before reading)."""
    found = columns.get(name)
    return found if found is not None else pa.nulls(n, pa.string())


def id_text(arr: pa.Array, clean: bool = False) -> pa.Array:
    """An id as text: ``17850.0`` (text or a float column) reads ``17850``; NaN is missing."""
    if pa.types.is_floating(arr.type):
        v = np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        finite = np.isfinite(v) & np_bool(pc.is_valid(arr))
        integral = finite & (np.floor(v) == v) & (np.abs(v) < _EXACT_INT)
        ints = pa.array(np.where(integral, v, 0).astype(np.int64)).cast(pa.string())
        text = pc.if_else(pa.array(integral), ints, arr.cast(pa.string()))
        return pc.if_else(pa.array(finite), text, NULL_STR)
    text = as_text(arr, clean)
    return pc.replace_substring_regex(text, _INTEGRAL_FLOAT_RE, r"\1")


@dataclass
class ParsedNumbers:
    values: np.ndarray
    """float64; NaN where missing or invalid."""
    null: np.ndarray
    wrong: np.ndarray
    non_finite: np.ndarray
    describe: Callable[[np.ndarray], list[str]]
    """One-line detail for the given rows (those that are wrong or non-finite)."""


def parse_numbers(arr: pa.Array, label: str = "amount", clean: bool = False) -> ParsedNumbers:
    n = len(arr)
    t = arr.type
    if pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_decimal(t):
        values = np.asarray(arr.cast(pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64)
        null = ~np_bool(pc.is_valid(arr))
        values = np.where(null, np.nan, values)
        non_finite = ~null & ~np.isfinite(values)
        shown = arr
        wrong = np.zeros(n, dtype=bool)
    else:
        text = as_text(arr, clean)
        null = ~np_bool(pc.is_valid(text))
        numeric = np_bool(pc.match_substring_regex(text, _NUMBER_RE))
        safe = pc.if_else(pa.array(numeric), text, pa.scalar("0"))
        values = np.asarray(
            pc.cast(safe, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
        values = np.where(numeric, values, np.nan)
        named_non_finite = np_bool(pc.match_substring_regex(text, _NON_FINITE_RE))
        non_finite = named_non_finite | (numeric & ~np.isfinite(values))
        wrong = ~null & ~numeric & ~named_non_finite
        shown = text

    def describe(idx: np.ndarray) -> list[str]:
        vals = shown.take(pa.array(idx, pa.int64())).to_pylist()
        return [
            f"{label} {v!r} is not finite" if non_finite[i] else f"{label} {v!r} is not a number"
            for i, v in zip(idx, vals)
        ]

    return ParsedNumbers(values, null, wrong, non_finite, describe)


def np_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
