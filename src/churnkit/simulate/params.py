"""Inputs of a simulation run: validated once, saved beside the output."""

from __future__ import annotations

import datetime as dt

from pydantic import Field, model_validator

from churnkit.config import StrictModel


class SimulationParams(StrictModel):
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
    cutoff_step_days: int = Field(28, ge=1)
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
    def _check(self) -> SimulationParams:
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
