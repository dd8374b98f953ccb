"""``configs/churnkit.yaml``: the workspace, ingest, simulation and scoring settings."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from churnkit.config.base import StrictModel
from churnkit.config.problems import ActivityEvents
from churnkit.config.sources import Design
from churnkit.contracts import ROLES


class IngestSettings(StrictModel):
    min_ts: dt.date = dt.date(1990, 1, 1)
    """Events before this date are rejected as out of range (clock errors, epoch zero)."""
    chunk_rows: int = Field(200_000, ge=1_000)
    """Rows parsed and validated at a time: bounds memory on large logs."""
    duckdb_memory_limit: str = "2GB"
    """Cap for the DuckDB dedup/partition pass; DuckDB spills to disk beyond it."""
    partition_by: Literal["month", "none"] = "month"


class SimulateSettings(StrictModel):
    """``simulate:``: one simulation's inputs, for the CLI and the Python API alike."""

    users: int = Field(5_000, ge=1)
    days: int = Field(365, ge=14)
    seed: int = 42
    start: dt.date = dt.date(2024, 1, 1)
    horizons: list[int] = Field(default_factory=lambda: [7, 28, 30, 90])
    cutoffs: list[dt.date] | None = None
    """Truth cutoffs; None means every ``cutoff_step_days`` back from a week before the end.

    Anchored at the end because training grids are: a weekly grid ends ``H`` days before
    the data end, so with a 7-day step the latest training cutoffs of the GA4 problems
    (H = 7 and 28) have truth, and so their final test can be scored against it."""
    cutoff_step_days: int = Field(7, ge=1)
    prestart_share: float = Field(0.4, ge=0.0, le=1.0)
    """Share of users who signed up before the log starts (the existing base)."""
    campaign_every_days: int = Field(56, ge=7)
    campaign_first_day: int = Field(35, ge=1)
    campaign_horizon_days: int = Field(28, ge=1)
    """Window over which each campaign's true individual effect is measured."""
    observable: bool = True
    """Also write the ``*_observable`` truth: forecasts from the Bayes filter of each
    user's state given their log and true traits (what a perfect model of the log could
    reach). It more than doubles simulation time; turn it off for very large runs."""

    @model_validator(mode="after")
    def _check(self) -> SimulateSettings:
        if any(h <= 0 for h in self.horizons):
            raise ValueError("horizons must be positive")
        for c in self.cutoffs or []:
            if not self.start < c <= self.end:
                raise ValueError(f"cutoff {c} outside the simulated period ({self.start} .. {self.end})")
        return self

    @property
    def end(self) -> dt.date:
        """First day after the simulated period."""
        return self.start + dt.timedelta(days=self.days)

    def cutoff_days(self) -> list[int]:
        """Cutoffs as day offsets from the start; a cutoff is midnight UTC of that day."""
        if self.cutoffs is not None:
            return sorted({(c - self.start).days for c in self.cutoffs})
        return sorted(range(self.days - 7, 0, -self.cutoff_step_days))



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
    """How tiers and stages are cut. The silent and churned cuts follow the data's rhythm
    unless set, so one default suits daily apps and shops whose customers buy twice a year.

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
    silent_min_days: float | None = Field(None, ge=0)
    """... and > this many days (so a daily user is not silent after one quiet day). None:
    from the data's rhythm, the 75th percentile of the gaps between active days."""
    churned_days: float | None = Field(None, gt=0)
    """Churned: no activity for at least this many days. None: from the data's rhythm, the
    90th percentile of the gaps after which users came back (longer silences are rare
    among users who return), at least a week."""
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
        if None not in (self.silent_min_days, self.churned_days) and self.silent_min_days >= self.churned_days:
            raise ValueError(
                f"silent_min_days ({self.silent_min_days:g}) must be below churned_days ({self.churned_days:g})"
            )
        return self

    def tier_name(self, key: str) -> str:
        return self.tier_names.get(key, key.replace("_", " "))


class ScoringSettings(StrictModel):
    """``scoring:``: which problems' champions give the three scores, and how lists are cut."""

    churn: str | None = "churn_ga4"
    purchase: str | None = "purchase_ga4"
    ltv: str | None = "revenue_ga4"
    """The problem (a name or a YAML path) whose ``champion`` model gives each role's score;
    null leaves the role out: its columns are absent, not an error. At least one is set."""
    reasons: int = Field(3, ge=0, le=10)
    """Reason codes per user (churn drivers that push risk up); 0 turns them off."""
    reasons_for: Literal["top", "population", "all"] = "top"
    """Who gets reasons when scoring. ``top``: the first ``reasons_top`` users of the risk
    ranking (the rows a risk list shows first; a list adds them for any other row it shows);
    ``population``: every user the churn model was trained on (active in its look-back), the
    users a risk list can show; ``all``: everyone scored (slower, and extrapolated). TreeSHAP
    costs several times a prediction, so explaining only shown rows keeps scoring near it."""
    reasons_top: int = Field(1_000, ge=0)
    """With ``reasons_for: top``: how many of the risk ranking's first users get reasons when
    scoring (TreeSHAP of a 500-tree model costs ~9 ms a row on one core: 1,000 rows ~9 s)."""
    chunk_rows: int = Field(100_000, ge=1_000)
    """Rows per model/SHAP call: bounds memory on large batches."""
    threads: int | None = None
    """LightGBM threads for prediction and SHAP (None: auto by rows; -1: all cores)."""
    segments: SegmentSettings = SegmentSettings()
    pseudonym_key_env: str = "CHURNKIT_PSEUDONYM_KEY"
    """Environment variable holding the key for ``--pseudonymise`` (HMAC-SHA256 of user ids)."""

    @model_validator(mode="after")
    def _some_role(self) -> ScoringSettings:
        if not self.roles:
            raise ValueError(f"no role to score: set at least one of {', '.join(ROLES)} to a problem")
        return self

    @property
    def roles(self) -> tuple[str, ...]:
        """The configured roles, in the contract's order."""
        return tuple(r for r in ROLES if getattr(self, r) is not None)

    def problem_of(self, role: str) -> str | None:
        """The problem whose champion gives ``role``'s score (None: not configured)."""
        value = getattr(self, role)
        return None if value is None else str(value)

    def setting(self, role: str) -> str:
        """``scoring.<role> = <value>`` as an error names it, saying when it is the default."""
        default = "" if role in self.model_fields_set else " (the default)"
        return f"scoring.{role} = {self.problem_of(role)}{default}"


class KpiSettings(StrictModel):
    """``kpi:``: how the operations KPIs count."""

    time_zone: str = "UTC"
    """The business time zone (IANA name): a day, week and month start at its midnight."""
    activity: ActivityEvents = ActivityEvents()
    """What counts as active: the same rule, and default, as a problem's ``activity``."""
    segment_by: list[str] | None = None
    """Dimensions of the by-segment KPI tables: user attributes and ``lifecycle_stage`` /
    ``rfm_tier`` (each user's stage or tier at the period's start, cut as
    ``scoring.segments`` says). None: every user attribute with at most
    ``max_segment_values`` values, then the stage and the tier."""
    max_segment_values: int = Field(20, ge=2, le=1000)

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/London)") from None
        return v


class AlertRule(StrictModel):
    """One KPI rule (:mod:`churnkit.monitor.anomalies` says how each method judges)."""

    kpi: str
    name: str = ""
    """Defaults to ``<kpi>_<grain>_<method>``; an alert's id starts with it."""
    grain: Literal["day", "week", "month"] = "day"
    method: Literal["seasonal", "stl", "cusum", "threshold"] = "seasonal"
    direction: Literal["down", "up", "both"] = "both"
    segment_by: str | None = None
    """Judge each segment of this KPI segment dimension (``platform``, ``lifecycle_stage``
    ...; ``attributes``: every user attribute) instead of the total."""
    weeks: int = Field(8, ge=3, le=52)
    """seasonal: how many earlier same weekdays (or periods) make the baseline."""
    k: float = Field(3.5, gt=0)
    """seasonal, stl: robust standard deviations from the expected value that open a warning
    (3.5: on Poisson-noise daily series with a weekly pattern, 0.002 false alarms per
    KPI-month for seasonal, 0.07 for stl; 3.0: 0.064 for seasonal); cusum: the standard
    deviations the summed errors must pass (5 is usual) ..."""
    critical_k: float = Field(5.0, gt=0)
    """... and a critical alert."""
    min_spread: float = Field(0.05, ge=0)
    """seasonal: the band is at least this share of the median wide."""
    low: float | None = None
    high: float | None = None
    """threshold: fixed bounds."""
    max_change: float | None = Field(None, gt=0)
    """threshold: largest relative change against ``vs`` that is not an alert (0.3: 30%)."""
    vs: Literal["previous", "last_week"] = "previous"
    min_volume: float = Field(0.0, ge=0)
    """No alert where the expected value is below this (small numbers move a lot)."""

    @model_validator(mode="after")
    def _named(self) -> AlertRule:
        if not self.name:
            by = f"_by_{self.segment_by}" if self.segment_by else ""
            object.__setattr__(self, "name", f"{self.kpi}_{self.grain}_{self.method}{by}")
        if self.method == "stl" and self.grain != "day":
            raise ValueError(f"alert rule {self.name}: stl needs a daily series (grain: day); use seasonal for "
                             f"weeks and months")
        if self.method == "threshold" and self.low is None and self.high is None and self.max_change is None:
            raise ValueError(f"alert rule {self.name}: a threshold rule needs low, high or max_change")
        return self


def _default_rules() -> list[AlertRule]:
    return [
        AlertRule(kpi="active_users", direction="both", min_volume=20),
        AlertRule(kpi="active_users", direction="down", min_volume=20, segment_by="attributes"),
        AlertRule(kpi="orders", direction="down", min_volume=10),
        AlertRule(kpi="orders", method="cusum", k=6, critical_k=10, direction="down", min_volume=5,
                  segment_by="attributes"),
        AlertRule(kpi="revenue", direction="down", min_volume=100),
        AlertRule(kpi="paying_rate", grain="week", method="threshold", max_change=0.3, direction="down"),
    ]


class AlertSettings(StrictModel):
    """``alerts:``: the rules ``churnkit alerts`` checks."""

    rules: list[AlertRule] = Field(default_factory=_default_rules)
    webhook_url: str | None = None
    """Optional: new alerts are POSTed here as JSON; a failing hook never fails the run."""
    explain_by: list[str] | None = None
    """Dimensions searched for the segments that drove a total's move (None: every KPI
    segment dimension)."""

    @field_validator("rules")
    @classmethod
    def _unique(cls, v: list[AlertRule]) -> list[AlertRule]:
        names = [r.name for r in v]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ValueError(f"alert rule names must be unique: {', '.join(dup)} appears twice")
        return v


class CampaignSettings(StrictModel):
    """``campaigns:``: how ``churnkit campaign evaluate`` reads an A/B test."""

    window_days: int = Field(28, ge=1, le=365)
    """The outcome window after assignment where the assignments table has no
    ``horizon_days``: retained = any activity in ``[assigned_ts, assigned_ts + window)``."""
    control: dict[str, str] = Field(default_factory=dict)
    """The control variant per campaign id, where the assignments table does not declare it
    (a source's ``control:`` / ``control_column:``); it is never guessed from names."""
    design: dict[str, Design] = Field(default_factory=dict)
    """``randomised`` or ``targeted`` per campaign id, overriding the assignments table's
    declaration (a source's ``assignments: design``). A targeted campaign (sent to chosen
    users) gets a descriptive comparison with the users it was not sent to, never a verdict."""
    alpha: float = Field(0.05, gt=0, lt=0.5)
    correction: Literal["holm", "hochberg", "bh", "by", "none"] = "holm"
    """Multiple-comparison adjustment over every metric x variant of a campaign."""
    srm_threshold: float = Field(0.001, gt=0, lt=0.5)
    """A chi-square p-value below this is a sample ratio mismatch: it blocks the verdict."""
    cuped: bool = True
    """Adjust each metric by its own pre-period value (CUPED): narrower intervals, same target."""
    cupac: bool = True
    """With CUPED and a churn champion: adjust each metric instead by its prediction from its
    pre-period value and the churn score at the assignment date (CUPAC), usually narrower still."""
    margins: dict[str, float] = Field(default_factory=lambda: {"push_opt_outs": 0.01, "support_tickets": 0.01,
                                                                "refunds": 0.01})
    """Guardrails: the largest increase per user (absolute) accepted; the upper end of the
    effect's interval must stay below it (non-inferiority)."""


class TargetingSettings(StrictModel):
    """``targeting:``: what ``churnkit target`` weighs an uplift model's estimates with."""

    contact_cost: dict[str, float] = Field(
        default_factory=lambda: {"push": 0.01, "email": 0.005, "sms": 0.05, "coupon": 2.0})
    """Cost of one contact per channel, in the revenue's currency (a coupon: its expected
    discount and handling)."""
    channel: str = "push"
    """The channel when ``--channel`` is not given."""
    value_per_success: float | None = Field(None, gt=0)
    """For a retention or conversion uplift: what one more retained (converted) user is worth.
    Unset: each user's ``predicted_ltv`` from the scores at the as-of date."""
    reasons: int = Field(3, ge=0, le=10)
    """Reasons per user: the features that raise the estimated effect most."""

    @model_validator(mode="after")
    def _check(self) -> TargetingSettings:
        negative = [k for k, v in self.contact_cost.items() if v < 0]
        if negative:
            raise ValueError(f"contact_cost.{negative[0]} is negative")
        if self.channel not in self.contact_cost:
            raise ValueError(f"channel {self.channel!r} has no contact_cost (known: {', '.join(self.contact_cost)})")
        return self


class MonitorSettings(StrictModel):
    """``monitor:``: when ``churnkit monitor`` calls a feature or score drifted, and when a
    model's performance has dropped far enough to open an alert and advise a retrain."""

    psi: float = Field(0.2, gt=0)
    """A distribution moved when its PSI over the training deciles is above this ..."""
    p_value: float = Field(0.001, gt=0, lt=1)
    """... and the chi-square test of the move is below this (a tiny move is "significant"
    with many users, a large one on few users may be noise: both must hold)."""
    share_change: float = Field(0.10, gt=0, le=1)
    """... or when one bin's share of users moved by more than this (absolute): PSI
    understates moves in features with few values (a 0/1 flag from 19% to 30%: PSI 0.07)."""
    missing_increase: float = Field(0.10, ge=0, le=1)
    """Flag a feature whose missing share grew by more than this (absolute)."""
    out_of_range: float = Field(0.05, ge=0, le=1)
    """Flag a feature with more than this share of values outside its training range."""
    margin: float = Field(0.05, gt=0)
    """A drop of the headline metric (ROC-AUC; normalised Gini for revenue) below its test
    value by more than this opens an alert: critical once outcomes are realised, a warning
    when only expected."""
    drivers: int = Field(10, ge=1)
    """The model's top features by mean |SHAP| on the scored users: drift in one of them
    advises a retrain."""
    sample_rows: int = Field(500, ge=100)
    """Scored users sampled (seeded) for the drivers' mean |SHAP|."""


class ChurnkitConfig(StrictModel):
    """``configs/churnkit.yaml``: where the workspace lives and project defaults."""

    workspace: Path = Path("workspace")
    tracking_uri: str | None = None
    """MLflow tracking URI; None means SQLite inside the workspace."""
    seed: int = 42
    ingest: IngestSettings = IngestSettings()
    simulate: SimulateSettings = SimulateSettings()
    scoring: ScoringSettings = ScoringSettings()
    kpi: KpiSettings = KpiSettings()
    alerts: AlertSettings = AlertSettings()
    campaigns: CampaignSettings = CampaignSettings()
    targeting: TargetingSettings = TargetingSettings()
    monitor: MonitorSettings = MonitorSettings()
