"""Pydantic models for every churnkit YAML; loaded once at the edge and passed down.

Unknown keys are rejected (``extra="forbid"``) so a typo in a config is an error that
names the key, not a silently ignored setting.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from churnkit.errors import ConfigError

M = TypeVar("M", bound=BaseModel)


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# --------------------------------------------------------------------------- workspace


class IngestSettings(StrictModel):
    min_ts: dt.date = dt.date(1990, 1, 1)
    """Events before this date are rejected as out of range (clock errors, epoch zero)."""
    chunk_rows: int = Field(200_000, ge=1_000)
    """Rows parsed and validated at a time: bounds memory on large logs."""
    duckdb_memory_limit: str = "2GB"
    """Cap for the DuckDB dedup/partition pass; DuckDB spills to disk beyond it."""
    partition_by: Literal["month", "none"] = "month"


class SimulateSettings(StrictModel):
    users: int = Field(5_000, ge=1)
    days: int = Field(365, ge=14)
    seed: int = 42
    start: dt.date = dt.date(2024, 1, 1)
    horizons: list[int] = Field(default_factory=lambda: [7, 28, 30, 90])
    cutoff_step_days: int = Field(7, ge=1)
    """Truth is written for cutoffs every this many days (unless cutoffs are given)."""
    observable: bool = True
    """Also write the truth a perfect model of the log could reach (see SimulationParams)."""


# --------------------------------------------------------------------------- segments and scoring

TIERS = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new_customers",
    "promising",
    "need_attention",
    "about_to_sleep",
    "at_risk",
    "cannot_lose_them",
    "hibernating",
    "lost",
    "no_purchases_yet",
)
"""Tier keys; the displayed name is the key with spaces unless ``tier_names`` says otherwise."""

class SegmentSettings(StrictModel):
    """How tiers and stages are cut. Defaults suit daily-use apps and shops alike.

    Lifecycle, checked in this order: churned, new, recalled, silent, else active.
    """

    rfm_bins: int = Field(5, ge=2, le=10)
    """Quantile bins per R, F and M score (5: scores 1..5); tiers rescale other counts to 1..5."""
    tier_names: dict[str, str] = Field(default_factory=dict)
    """Display names by tier key (e.g. ``{"cannot_lose_them": "VIP at risk"}``)."""
    new_days: float = Field(14, ge=0)
    """New: first active day at most this many days before the as-of date."""
    silent_factor: float = Field(3.0, gt=0)
    """Silent: days since last activity > this times the user's typical gap ..."""
    silent_min_days: float = Field(7, ge=0)
    """... and > this many days (so a daily user is not silent after one quiet day)."""
    churned_days: float = Field(30, gt=0)
    """Churned: no activity for at least this many days."""
    recalled_days: float = Field(14, ge=0)
    """Recalled: latest active day ended a gap of >= churned_days, at most this many days ago."""

    @field_validator("tier_names")
    @classmethod
    def _known_tiers(cls, v: dict[str, str]) -> dict[str, str]:
        unknown = sorted(set(v) - set(TIERS))
        if unknown:
            raise ValueError(f"unknown tiers {unknown}; known: {', '.join(TIERS)}")
        return v

    @model_validator(mode="after")
    def _consistent(self) -> SegmentSettings:
        if self.silent_min_days >= self.churned_days:
            raise ValueError(
                f"silent_min_days ({self.silent_min_days:g}) must be below churned_days ({self.churned_days:g})"
            )
        return self

    def tier_name(self, key: str) -> str:
        return self.tier_names.get(key, key.replace("_", " "))


class ScoringSettings(StrictModel):
    """``scoring:``: which problems' champions give the three scores, and how lists are cut."""

    churn: str = "churn_ga4"
    purchase: str = "purchase_ga4"
    ltv: str = "revenue_ga4"
    """Problem names (``configs/problems/NAME.yaml``) whose ``champion`` models score."""
    reasons: int = Field(3, ge=0, le=10)
    """Reason codes per user (churn drivers that push risk up); 0 turns them off."""
    reasons_for: Literal["population", "all"] = "population"
    """``population``: only users the churn model was trained on (active in its look-back),
    the users a risk list can show; ``all``: everyone scored (slower, and extrapolated)."""
    chunk_rows: int = Field(100_000, ge=1_000)
    """Rows per model/SHAP call: bounds memory on large batches."""
    threads: int | None = None
    """LightGBM threads for prediction and SHAP (None: auto by rows; -1: all cores)."""
    segments: SegmentSettings = SegmentSettings()
    pseudonym_key_env: str = "CHURNKIT_PSEUDONYM_KEY"
    """Environment variable holding the key for ``--pseudonymise`` (HMAC-SHA256 of user ids)."""


class ChurnkitConfig(StrictModel):
    """``configs/churnkit.yaml``: where the workspace lives and project defaults."""

    workspace: Path = Path("workspace")
    tracking_uri: str | None = None
    """MLflow tracking URI; None means SQLite inside the workspace."""
    seed: int = 42
    ingest: IngestSettings = IngestSettings()
    simulate: SimulateSettings = SimulateSettings()
    scoring: ScoringSettings = ScoringSettings()


# --------------------------------------------------------------------------- sources


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


# --------------------------------------------------------------------------- problems

FEATURE_FAMILIES = (
    "rfm",
    "windows",
    "trends",
    "gaps",
    "funnel",
    "diversity",
    "push",
    "campaigns",
    "attributes",
)


class CutoffGrid(StrictModel):
    """Which cutoffs a training set uses: explicit dates, or a regular grid.

    Without ``end`` the grid ends at the latest cutoff whose label window is complete
    (data end - horizon); without ``start`` it reaches back ``count`` steps.
    """

    dates: list[dt.date] | None = None
    start: dt.date | None = None
    end: dt.date | None = None
    step_days: int = Field(7, ge=1)
    count: int | None = Field(12, ge=1)

    @model_validator(mode="after")
    def _check(self) -> CutoffGrid:
        if self.dates is not None and (self.start or self.end):
            raise ValueError("give either dates or start/end, not both")
        if self.start and self.end and self.start > self.end:
            raise ValueError(f"start {self.start} is after end {self.end}")
        return self


class ActivityEvents(StrictModel):
    """Which events count as activity (for eligibility and the churn label)."""

    include: list[str] | None = None
    """If set, only these events count."""
    exclude: list[str] = Field(default_factory=lambda: ["push_sent"])
    """Events sent *to* the user, not done by them."""


class FeatureSelection(StrictModel):
    families: list[str] = Field(default_factory=lambda: list(FEATURE_FAMILIES))
    exclude: list[str] = Field(default_factory=list)
    """Feature names to drop after building."""

    @field_validator("families")
    @classmethod
    def _known(cls, v: list[str]) -> list[str]:
        unknown = sorted(set(v) - set(FEATURE_FAMILIES))
        if unknown:
            raise ValueError(f"unknown feature families {unknown}; known: {list(FEATURE_FAMILIES)}")
        return v


class ProblemConfig(StrictModel):
    """One prediction problem: who is eligible, what is predicted, over which cutoffs."""

    name: str
    description: str = ""
    kind: Literal["churn", "purchase", "revenue"]
    lookback_days: int = Field(ge=1)
    """Eligible users were active in the last ``lookback_days`` before the cutoff."""
    horizon_days: int = Field(ge=1)
    """Outcomes are measured over ``[cutoff, cutoff + horizon_days)``."""
    min_history_days: int = Field(0, ge=0)
    """Users whose first activity is more recent than this before the cutoff are excluded."""
    cutoffs: CutoffGrid = CutoffGrid()
    activity: ActivityEvents = ActivityEvents()
    features: FeatureSelection = FeatureSelection()
    model: dict[str, Any] = Field(default_factory=dict)
    """Model settings (used by training)."""
    tuning: dict[str, Any] = Field(default_factory=dict)
    """Search space and budget (used by tuning)."""


# --------------------------------------------------------------------------- loading


def _format_validation_error(err: ValidationError) -> str:
    parts = []
    for e in err.errors():
        where = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            parts.append(f"unknown key '{where}'")
        elif e["type"] == "missing":
            parts.append(f"missing key '{where}'")
        else:
            parts.append(f"'{where}': {e['msg']}")
    return "; ".join(parts)


def parse_model(data: Any, model: type[M], origin: str) -> M:
    """Validate ``data`` as ``model``; on failure raise a one-line ConfigError naming origin."""
    try:
        return model.model_validate(data if data is not None else {})
    except ValidationError as err:
        raise ConfigError(f"{origin}: {_format_validation_error(err)}") from None


def load_yaml(path: Path | str, model: type[M]) -> M:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read config ({err.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        at = f" at line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}: not valid YAML{at}") from None
    if data is not None and not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level")
    return parse_model(data, model, str(path))


def load_churnkit_config(path: Path | str | None) -> ChurnkitConfig:
    """The project config; embedded defaults when no file is given or found."""
    if path is None:
        default = Path("configs/churnkit.yaml")
        return load_yaml(default, ChurnkitConfig) if default.exists() else ChurnkitConfig()
    return load_yaml(path, ChurnkitConfig)
