"""Source YAMLs: how one kind of raw log maps onto the event contract."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.compute as pc
from pydantic import Field, field_validator, model_validator

from churnkit.config.base import StrictModel

DEFAULT_SOURCE = "contract"
"""The built-in source ``churnkit ingest`` uses without ``--source``: files already in the
event contract's columns (``defaults/sources/contract.yaml``)."""


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


TEXT_TESTS: tuple[str, ...] = ("equals", "one_of", "starts_with", "ends_with", "contains", "matches", "empty")
NUMBER_TESTS: tuple[str, ...] = ("less_than", "at_most", "greater_than", "at_least")


class Condition(StrictModel):
    """A test of one source column's value (stripped text; empty is missing).

    Several tests in one condition must all hold. ``equals`` with a YAML number compares
    numbers (``0`` matches ``0``, ``0.0``, ``-0``); quoted, it compares text. The number
    tests are false where the value is not a number, ``empty: true`` holds for a missing value.
    """

    column: str
    equals: str | float | None = None
    one_of: list[str] | None = None
    starts_with: str | None = None
    ends_with: str | None = None
    contains: str | None = None
    matches: str | None = None
    """A regular expression (RE2) found anywhere in the value; anchor it with ^ and $."""
    empty: bool | None = None
    less_than: float | None = None
    at_most: float | None = None
    greater_than: float | None = None
    at_least: float | None = None

    @model_validator(mode="after")
    def _some_test(self) -> Condition:
        if not self.tests():
            raise ValueError(f"a condition on '{self.column}' needs a test: one of {', '.join(TEXT_TESTS + NUMBER_TESTS)}")
        if self.matches is not None:
            try:  # checked by the engine that runs it (RE2: no look-arounds, no back-references)
                pc.match_substring_regex(pa.array([""]), self.matches)
            except pa.ArrowInvalid as err:
                reason = str(err).splitlines()[0]
                raise ValueError(f"matches {self.matches!r} is not a regular expression ({reason})") from None
        return self

    def tests(self) -> dict[str, Any]:
        return {k: getattr(self, k) for k in TEXT_TESTS + NUMBER_TESTS if getattr(self, k) is not None}


class Case(StrictModel):
    """``value`` replaces the field's value on rows where every condition in ``when`` holds."""

    when: list[Condition]
    value: str

    @field_validator("when", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, dict) else v

    @field_validator("when")
    @classmethod
    def _not_empty(cls, v: list[Condition]) -> list[Condition]:
        if not v:
            raise ValueError("when needs at least one condition")
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
    cases: list[Case] | None = None
    """Text fields: the first case whose conditions hold sets the value (after ``values``),
    e.g. event ``refund`` where the invoice starts with ``C``; other rows keep theirs."""
    optional: bool = False
    """A file without ``column`` is read with this field missing, instead of being refused."""

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
        if self.optional and self.column is None:
            raise ValueError("optional applies to a single column")
        return self

    def source_columns(self) -> list[str]:
        """The columns the value is read from (not those the cases test)."""
        if self.column is not None:
            return [self.column]
        return list(self.columns or self.multiply or [])

    def condition_columns(self) -> list[str]:
        return [c.column for case in self.cases or [] for c in case.when]


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
    order_id: FieldSpec | None = None
    """Lines sharing an order id are one purchase (order counts, average order value)."""

    @model_validator(mode="after")
    def _text_only_cases(self) -> EventFields:
        for name in ("ts", "amount"):
            spec = getattr(self, name)
            if spec is not None and spec.cases:
                raise ValueError(f"{name}: cases set text values; {name} is not a text field")
        return self


class TableSource(StrictModel):
    """Where a table read beside the events is and how to read it."""

    path: Path
    """Relative paths resolve against the folder of the first input."""
    format: Literal["csv", "parquet", "jsonl"] | None = None
    csv: CsvOptions = CsvOptions()


class UsersTableSource(TableSource):
    """A users table read beside the events (signup time and attributes)."""

    user_id: FieldSpec
    signup_ts: TimestampSpec | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    """Attribute name in churnkit -> column in the table."""


Design = Literal["randomised", "targeted"]
"""How a campaign chose who got what: ``randomised`` (an A/B test with a control arm: effects
are causal) or ``targeted`` (sent to chosen users: differences describe, they are not effects)."""


class LookupTable(TableSource):
    """A small second table joined onto the assignments by one key column, for values the
    assignments file lacks (e.g. a campaign's start date as every recipient's ``assigned_ts``)."""

    key: str
    """The column both tables share (e.g. ``campaign_id``); its values are unique here."""
    columns: list[str]
    """The columns taken from this table; the field specs read them as if the assignments had them."""

    @field_validator("columns")
    @classmethod
    def _some(cls, v: list[str]) -> list[str]:
        if not v:
            raise ValueError("lookup.columns must name at least one column")
        return v


class AssignmentsTableSource(TableSource):
    """A campaign assignments table (exposures): which user got which variant of which
    campaign, and when.

    Which variant is the control is declared, never guessed from its name: ``control`` (the
    variant name that is control in every campaign) or ``control_column`` (a true/false
    column, true on control rows), or neither (``is_control`` is stored null and the project
    config must name the control per campaign); not both.
    """

    user_id: FieldSpec
    campaign_id: FieldSpec
    variant: FieldSpec
    assigned_ts: TimestampSpec
    horizon_days: str | None = None
    """A column with each assignment's outcome window in days (a positive integer)."""
    control: str | None = None
    """The variant name that is the control in every campaign."""
    control_column: str | None = None
    """A true/false column (``true``/``false``, ``1``/``0``, ``yes``/``no``), true on control rows."""
    design: Design | None = None
    """How the table's campaigns were assigned (see :data:`Design`); None: randomised where a
    control arm exists. The project config's ``campaigns.design`` overrides it per campaign."""
    lookup: LookupTable | None = None
    """A second table joined on ``lookup.key`` whose ``lookup.columns`` the field specs may read."""

    @model_validator(mode="after")
    def _one_control_declaration(self) -> AssignmentsTableSource:
        if self.control is not None and self.control_column is not None:
            raise ValueError("give control (a variant name) or control_column (a true/false column), not both")
        if self.control is not None and not self.control.strip():
            raise ValueError("control must name a variant")
        if self.lookup is not None and self.lookup.key in self.lookup.columns:
            raise ValueError("lookup.columns must not repeat lookup.key")
        return self


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
    """False: a negative amount on any event but a ``refund`` is an error (quarantined). A
    refund's amount is stored as its size, so a cancellation line with a negative quantity is
    a refund of a positive amount either way."""
    duplicates: Literal["drop", "keep"] = "drop"
    """``keep`` for logs without an event id where identical lines are distinct events."""
    users: UsersTableSource | None = None
    assignments: AssignmentsTableSource | None = None
    """A campaign assignments table read beside the events."""
