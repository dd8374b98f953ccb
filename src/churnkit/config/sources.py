"""Source YAMLs: how one kind of raw log maps onto the event contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from churnkit.config.base import StrictModel


class CsvOptions(StrictModel):
    delimiter: str = ","
    """One character, an escape such as ``\\t``, or ``whitespace`` for runs of blanks."""
    header: bool = True
    columns: list[str] | None = None
    """Column names for files without a header (or to rename a header's columns)."""
    encoding: str = "utf-8"
    quote: str | None = '"'

    @field_validator("delimiter")
    @classmethod
    def _one_char(cls, v: str) -> str:
        v = {"\\t": "\t", "tab": "\t"}.get(v, v)
        if v != "whitespace" and len(v) != 1:
            raise ValueError("delimiter must be one character, '\\t' or 'whitespace'")
        return v


class FieldSpec(StrictModel):
    """Where one contract field comes from: a column, several joined, a constant or a product.

    A plain string in YAML is shorthand for ``{column: NAME}``.
    """

    column: str | None = None
    columns: list[str] | None = None
    """Joined with a single space (e.g. separate date and time columns)."""
    const: str | float | None = None
    multiply: list[str] | None = None
    """Numeric product of columns, e.g. amount = quantity * unit_price."""
    values: dict[str, str] | None = None
    """Renames source values (e.g. ``buy: purchase``); unlisted values pass through."""

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, data: Any) -> Any:
        if isinstance(data, str):
            return {"column": data}
        return data

    @model_validator(mode="after")
    def _exactly_one_source(self) -> FieldSpec:
        given = [k for k in ("column", "columns", "const", "multiply") if getattr(self, k) is not None]
        if len(given) != 1:
            raise ValueError(
                "give exactly one of column, columns, const, multiply"
                + (f" (got {', '.join(given)})" if given else "")
            )
        return self

    def source_columns(self) -> list[str]:
        if self.column is not None:
            return [self.column]
        return list(self.columns or self.multiply or [])


class TimestampSpec(FieldSpec):
    formats: list[str] = Field(default_factory=lambda: ["iso8601"])
    """Tried in order: strftime patterns, ``iso8601``, ``unix_s`` or ``unix_ms``."""
    timezone: str = "UTC"
    """Zone of naive timestamps; values with an explicit offset keep theirs."""

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r}") from None
        return v


class EventFields(StrictModel):
    user_id: FieldSpec
    ts: TimestampSpec
    event: FieldSpec
    amount: FieldSpec | None = None
    category: FieldSpec | None = None
    channel: FieldSpec | None = None
    campaign_id: FieldSpec | None = None
    variant: FieldSpec | None = None


class UsersTableSource(StrictModel):
    """A users table read beside the events (signup time and attributes)."""

    path: Path
    """Relative paths resolve against the folder of the first input."""
    format: Literal["csv", "parquet", "jsonl"] | None = None
    csv: CsvOptions = CsvOptions()
    user_id: FieldSpec
    signup_ts: TimestampSpec | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    """Attribute name in churnkit -> column in the table."""


class SourceConfig(StrictModel):
    """How one kind of raw log maps onto the event contract."""

    name: str
    description: str = ""
    format: Literal["csv", "parquet", "jsonl"] | None = None
    """None: inferred from each file's extension."""
    pattern: str = "*"
    """Glob for files when an input is a folder."""
    csv: CsvOptions = CsvOptions()
    fields: EventFields
    vocabulary: list[str] | None = None
    """If set, events outside it are rejected."""
    allow_negative_amount: bool = True
    """False where the source has no refunds: a negative amount is then an error."""
    duplicates: Literal["drop", "keep"] = "drop"
    """``keep`` for logs without an event id where identical lines are distinct events."""
    users: UsersTableSource | None = None
