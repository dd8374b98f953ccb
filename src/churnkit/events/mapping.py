"""Source columns -> contract fields, as the source config's FieldSpecs say (vectorised).

A field comes from one column, several columns joined by a space, a constant, or (amounts) the
product of numeric columns; ``values`` then renames values and ``cases`` set values where
conditions hold (:mod:`conditions`). Text, numbers and ids are read as :mod:`values` says.
A refund's amount is its size: a cancellation line whose quantity (so amount) is negative
is a refund of the positive amount.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from churnkit.config import EventFields, FieldSpec
from churnkit.contracts import OPTIONAL_STRING_FIELDS, REFUND
from churnkit.events.conditions import apply_cases
from churnkit.events.timestamps import ParsedTimestamps, parse_timestamps
from churnkit.events.values import (
    NULL_STR,
    ParsedNumbers,
    as_text,
    column,
    id_text,
    np_bool,
    parse_numbers,
)

ID_FIELDS: tuple[str, ...] = ("user_id", "order_id")
"""Fields read as ids (:func:`values.id_text`): ``17850.0`` is user ``17850``."""

__all__ = ["ParsedNumbers", "as_text", "column", "parse_numbers"]


def required_columns(fields: EventFields) -> dict[str, str]:
    """Every source column the mapping reads -> the field that needs it (for error messages)."""
    out: dict[str, str] = {}
    for name in EventFields.model_fields:
        spec = getattr(fields, name)
        if spec is not None:
            for source in ([] if spec.optional else spec.source_columns()) + spec.condition_columns():
                out.setdefault(source, f"fields.{name}")
    return out


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
    columns: dict[str, pa.Array], spec: FieldSpec | None, n: int, clean: bool, is_id: bool = False
) -> pa.Array:
    """A text field's values: stripped (empty = missing), renamed, then set by ``cases``."""
    if spec is None:
        return pa.nulls(n, pa.string())
    read = id_text if is_id else as_text
    text = read(field_values(columns, spec, n, clean), clean and not spec.values)
    return apply_cases(text, spec.cases, columns, n, clean)


# --------------------------------------------------------------------------- numbers


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
    event = text_field(columns, fields.event, n, clean)
    amount = map_amount(columns, fields.amount, n, clean)
    refund = np_bool(pc.equal(event, REFUND))
    if refund.any():
        amount.values = np.where(refund, np.abs(amount.values), amount.values)
    return MappedEvents(
        n=n,
        user_id=text_field(columns, fields.user_id, n, clean, is_id=True),
        ts=parse_timestamps(ts_raw, fields.ts.formats, fields.ts.timezone),
        ts_text=ts_raw,
        event=event,
        amount=amount,
        optional={
            name: text_field(columns, getattr(fields, name), n, clean, is_id=name in ID_FIELDS)
            for name in OPTIONAL_STRING_FIELDS
        },
    )
