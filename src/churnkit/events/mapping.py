"""Source columns -> contract fields, as the source config's FieldSpecs say (vectorised).

A field comes from one column, several columns joined by a space, a constant, or (amounts) the
product of numeric columns; ``values`` then renames values. Text is stripped and an empty
value counts as missing. Numbers accept plain decimal or scientific notation (``12``, ``-3.5``,
``1e3``); anything else (``$12``, ``1,234``) is a ``wrong_type``, and ``nan``/``inf`` are
reported as non-finite rather than as text.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnkit.config import EventFields, FieldSpec
from churnkit.contracts import OPTIONAL_STRING_FIELDS
from churnkit.events.timestamps import ParsedTimestamps, parse_timestamps

NULL_STR = pa.scalar(None, pa.string())
_NUMBER_RE = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_NON_FINITE_RE = r"(?i)^[+-]?(nan|inf|infinity)$"


def required_columns(fields: EventFields) -> dict[str, str]:
    """Every source column the mapping reads -> the field that needs it (for error messages)."""
    out: dict[str, str] = {}
    for name in EventFields.model_fields:
        spec = getattr(fields, name)
        if spec is not None:
            for column in spec.source_columns():
                out.setdefault(column, f"fields.{name}")
    return out


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


def field_values(columns: dict[str, pa.Array], spec: FieldSpec, n: int, clean: bool) -> pa.Array:
    """The field's raw values: typed for a single column (Parquet), text otherwise."""
    if spec.column is not None:
        arr = column(columns, spec.column, n)
    elif spec.columns is not None:
        parts = [as_text(column(columns, c, n), clean) for c in spec.columns]
        arr = (
            parts[0]
            if len(parts) == 1
            else pc.binary_join_element_wise(*parts, " ", null_handling="skip")
        )
        arr = pc.if_else(pc.equal(arr, ""), NULL_STR, arr)
        clean = True
    elif spec.const is not None:
        const = spec.const
        # YAML `const: 1` arrives as 1.0 (str | float): write whole numbers without ".0"
        const_text = (
            str(int(const)) if isinstance(const, float) and const.is_integer() else str(const)
        )
        arr = pa.array(np.full(n, const_text, dtype=object), pa.string())
        clean = True
    else:  # multiply: numeric, handled by map_amount
        raise ValueError("multiply fields are numeric; use map_amount")
    if spec.values:
        arr = rename_values(as_text(arr, clean), spec.values)
    return arr


def rename_values(text: pa.Array, values: dict[str, str]) -> pa.Array:
    """``values`` renames listed values; others pass through unchanged."""
    keys = pa.array(list(values), pa.string())
    targets = pa.array(list(values.values()), pa.string())
    idx = pc.index_in(text, value_set=keys)
    renamed = pc.take(targets, idx)
    return pc.if_else(pc.is_null(idx), text, renamed)


def text_field(
    columns: dict[str, pa.Array], spec: FieldSpec | None, n: int, clean: bool
) -> pa.Array:
    if spec is None:
        return pa.nulls(n, pa.string())
    return as_text(field_values(columns, spec, n, clean), clean and not spec.values)


# --------------------------------------------------------------------------- numbers


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
        null = ~_np_bool(pc.is_valid(arr))
        values = np.where(null, np.nan, values)
        non_finite = ~null & ~np.isfinite(values)
        shown = arr
        wrong = np.zeros(n, dtype=bool)
    else:
        text = as_text(arr, clean)
        null = ~_np_bool(pc.is_valid(text))
        numeric = _np_bool(pc.match_substring_regex(text, _NUMBER_RE))
        safe = pc.if_else(pa.array(numeric), text, pa.scalar("0"))
        values = np.asarray(
            pc.cast(safe, pa.float64()).to_numpy(zero_copy_only=False), dtype=np.float64
        )
        values = np.where(numeric, values, np.nan)
        named_non_finite = _np_bool(pc.match_substring_regex(text, _NON_FINITE_RE))
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


def map_amount(
    columns: dict[str, pa.Array], spec: FieldSpec | None, n: int, clean: bool
) -> ParsedNumbers:
    """Amount from a column / joined columns / constant, or the product of ``multiply`` columns."""
    if spec is None:
        nothing = np.zeros(n, dtype=bool)
        return ParsedNumbers(np.full(n, np.nan), ~nothing, nothing, nothing, lambda idx: [])
    if spec.multiply is None:
        return parse_numbers(
            field_values(columns, spec, n, clean), "amount", clean and not spec.values
        )
    factors = [
        parse_numbers(column(columns, c, n), f"amount factor '{c}'", clean) for c in spec.multiply
    ]
    values = np.ones(n)
    for f in factors:
        values = values * f.values
    wrong = np.logical_or.reduce([f.wrong for f in factors])
    non_finite = ~wrong & (
        np.logical_or.reduce([f.non_finite for f in factors])
        | (~np.isnan(values) & ~np.isfinite(values))
    )
    null = ~wrong & ~non_finite & np.logical_or.reduce([f.null for f in factors])
    values = np.where(wrong | null, np.nan, values)

    def describe(idx: np.ndarray) -> list[str]:
        out = []
        for i in idx:
            bad = next((f for f in factors if f.wrong[i] or f.non_finite[i]), None)
            out.append(
                bad.describe(np.array([i]))[0] if bad else f"amount {values[i]!r} is not finite"
            )
        return out

    return ParsedNumbers(values, null, wrong, non_finite, describe)


# --------------------------------------------------------------------------- events


@dataclass
class MappedEvents:
    n: int
    user_id: pa.Array
    ts: ParsedTimestamps
    ts_text: pa.Array
    """The timestamp as text, for messages."""
    event: pa.Array
    amount: ParsedNumbers
    optional: dict[str, pa.Array]


def map_events(
    columns: dict[str, pa.Array], fields: EventFields, n: int, clean: bool
) -> MappedEvents:
    ts_raw = field_values(columns, fields.ts, n, clean)
    return MappedEvents(
        n=n,
        user_id=text_field(columns, fields.user_id, n, clean),
        ts=parse_timestamps(ts_raw, fields.ts.formats, fields.ts.timezone),
        ts_text=ts_raw,
        event=text_field(columns, fields.event, n, clean),
        amount=map_amount(columns, fields.amount, n, clean),
        optional={
            name: text_field(columns, getattr(fields, name), n, clean)
            for name in OPTIONAL_STRING_FIELDS
        },
    )


def _np_bool(arr: pa.Array) -> np.ndarray:
    return np.asarray(arr.fill_null(False).to_numpy(zero_copy_only=False), dtype=bool)
