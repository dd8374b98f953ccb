"""Problem YAMLs: who is eligible, what is predicted, over which cutoffs, with which model."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator, model_validator

from churnkit.config.base import StrictModel
from churnkit.config.estimators import (
    ClassifierSettings,
    LTVSettings,
    TuningSettings,
    UpliftModelSettings,
    classifier_settings,
    ltv_settings,
    tuning_settings,
    uplift_settings,
)
from churnkit.contracts import FEATURE_FAMILIES, NOT_ACTIVITY

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}")
"""Letters, digits, ``_``, ``.`` and ``-``: safe as a file name and a registry name."""


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
    exclude: list[str] = Field(default_factory=lambda: list(NOT_ACTIVITY))
    """Events sent *to* the user, not done by them."""

    def counts(self, event: str) -> bool:
        """Whether ``event`` counts as activity under these settings."""
        return (self.include is None or event in self.include) and event not in self.exclude


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


UpliftOutcome = Literal["retained", "converted", "revenue", "orders"]


class UpliftTarget(StrictModel):
    """``uplift:`` of an uplift problem: which effect is learnt from which past campaigns.

    Each randomised campaign's assigned users are rows: features at the day of assignment
    (events before that day only), the outcome in ``[assigned_ts, assigned_ts + horizon)``
    by the campaign evaluation's own definition, and whether the user was in a treatment arm.
    """

    outcome: UpliftOutcome = "retained"
    campaigns: list[str] | None = None
    """Campaign ids or shell patterns (``"*_coupon"``); default every randomised campaign.
    Campaigns of one kind (one channel, one offer) make the effect one thing to learn."""
    holdout_campaigns: int = Field(1, ge=1)
    """The latest campaigns, held out: the model is judged on campaigns it never saw."""


class ProblemConfig(StrictModel):
    """One prediction problem: who is eligible, what is predicted, over which cutoffs."""

    name: str
    """Names the training set (``datasets/NAME.parquet``) and the registered model
    (``churnkit-NAME``), so other commands find the problem by it."""
    description: str = ""
    kind: Literal["churn", "purchase", "revenue", "uplift"]
    lookback_days: int = Field(ge=1)
    """Eligible users were active in the last ``lookback_days`` before the cutoff."""
    horizon_days: int = Field(ge=1)
    """Outcomes are measured over ``[cutoff, cutoff + horizon_days)``."""
    min_history_days: int = Field(0, ge=0)
    """Users whose first activity is more recent than this before the cutoff are excluded."""
    cutoffs: CutoffGrid = CutoffGrid()
    activity: ActivityEvents = ActivityEvents()
    features: FeatureSelection = FeatureSelection()
    uplift: UpliftTarget | None = None
    """Uplift problems only: the outcome and the campaigns learnt from (defaults if unset)."""
    model: ClassifierSettings | LTVSettings | UpliftModelSettings = Field(  # type: ignore[assignment]
        default=None, validate_default=True)
    """The estimator's settings: :class:`ClassifierSettings` for churn and purchase,
    :class:`LTVSettings` for revenue, :class:`UpliftModelSettings` for uplift."""
    tuning: TuningSettings = Field(default=None, validate_default=True)  # type: ignore[assignment]
    """Search space and budget; the metric defaults by kind."""

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if not NAME_PATTERN.fullmatch(v):
            raise ValueError(
                f"{v!r} is not a problem name: use up to 100 letters, digits, '_', '.' or '-' (it names the"
                " training set file and the registered model)"
            )
        return v

    @field_validator("model", mode="wrap")
    @classmethod
    def _model_for_kind(cls, v: Any, handler: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:
            return None  # the kind's own error is reported
        parse = {"revenue": ltv_settings, "uplift": uplift_settings}.get(kind, classifier_settings)
        return parse(v.model_dump() if isinstance(v, BaseModel) else v, "model")

    @field_validator("tuning", mode="wrap")
    @classmethod
    def _tuning_for_kind(cls, v: Any, handler: Any, info: ValidationInfo) -> Any:
        kind = info.data.get("kind")
        if kind is None:
            return None
        return tuning_settings(kind, v.model_dump() if isinstance(v, BaseModel) else v, "tuning")

    @model_validator(mode="after")
    def _uplift_block(self) -> ProblemConfig:
        if self.kind == "uplift" and self.uplift is None:
            object.__setattr__(self, "uplift", UpliftTarget())
        elif self.kind != "uplift" and self.uplift is not None:
            raise ValueError(f"'uplift:' is for kind uplift, not {self.kind}")
        return self
