"""Retention campaigns: a plan fixed before the simulation, with random A/B assignment.

Eligibility uses only what a CRM knows in advance (push opt-in, signed up at least two
weeks before the send), so the plan is independent of how behaviour unfolds; truth may
therefore condition on it without leaking outcomes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from churnkit.simulate.dynamics import COUPON_DAYS, Treatment
from churnkit.simulate.population import Population

MIN_TENURE_DAYS = 14
TREATMENT_SHARE = 0.5


@dataclass(frozen=True)
class Campaign:
    campaign_id: str
    kind: str
    """``push`` (a retention message) or ``coupon`` (message + a week of discount)."""
    day: int
    send_sec: int


@dataclass(frozen=True)
class CampaignPlan:
    campaigns: list[Campaign]
    eligible: np.ndarray
    """(n_campaigns, n) bool."""
    treated: np.ndarray
    """(n_campaigns, n) bool: eligible and assigned to treatment."""

    def on_day(self, day: int) -> list[int]:
        return [i for i, c in enumerate(self.campaigns) if c.day == day]

    def treatment(self, pop: Population, day: int, only: np.ndarray | None = None) -> Treatment | None:
        """Combined state-move probabilities of the campaigns sent on ``day`` (None if none)."""
        idx = self.on_day(day)
        if not idx:
            return None
        rows = slice(None) if only is None else only
        keep_save = np.ones(pop.n)
        keep_win = np.ones(pop.n)
        keep_annoy = np.ones(pop.n)
        for i in idx:
            t = self.treated[i, rows]
            save = pop.save_coupon if self.campaigns[i].kind == "coupon" else pop.save_push
            keep_save *= 1 - np.where(t, save, 0.0)
            keep_win *= 1 - np.where(t, pop.winback, 0.0)
            keep_annoy *= 1 - np.where(t, pop.annoy, 0.0)
        return Treatment(save=1 - keep_save, winback=1 - keep_win, annoy=1 - keep_annoy)

    def treated_on(self, day: int, only: np.ndarray | None = None) -> np.ndarray | None:
        idx = self.on_day(day)
        if not idx:
            return None
        rows = slice(None) if only is None else only
        return np.any(self.treated[idx][:, rows], axis=0)

    def coupon_valid(self, day: int, only: np.ndarray | None = None) -> np.ndarray:
        """Whether each user holds a valid coupon on ``day`` (the days after a coupon send)."""
        rows = slice(None) if only is None else only
        valid = np.zeros(self.treated.shape[1], dtype=bool)[rows]
        for i, c in enumerate(self.campaigns):
            if c.kind == "coupon" and c.day < day <= c.day + COUPON_DAYS:
                valid = valid | self.treated[i, rows]
        return valid

    def coupon_campaign(self, day: int) -> np.ndarray:
        """Index of the coupon campaign each user is redeeming on ``day`` (-1: none)."""
        out = np.full(self.treated.shape[1], -1)
        for i, c in enumerate(self.campaigns):
            if c.kind == "coupon" and c.day < day <= c.day + COUPON_DAYS:
                out = np.where(self.treated[i] & (out < 0), i, out)
        return out

    def frame(self, start: np.datetime64) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "campaign_id": [c.campaign_id for c in self.campaigns],
                "kind": [c.kind for c in self.campaigns],
                "send_ts": pd.to_datetime(
                    [start + np.timedelta64(c.day, "D") + np.timedelta64(c.send_sec, "s") for c in self.campaigns]
                ).tz_localize("UTC"),
                "eligible_users": self.eligible.sum(axis=1),
                "treated_users": self.treated.sum(axis=1),
                "eligibility": f"push opt-in and signed up at least {MIN_TENURE_DAYS} days before the send",
                "treatment_share": TREATMENT_SHARE,
            }
        )


def plan_campaigns(
    pop: Population, days: int, first_day: int, every_days: int, rng: np.random.Generator
) -> CampaignPlan:
    """Alternate push and coupon campaigns every ``every_days`` days."""
    send_days = list(range(first_day, days - 7, every_days))
    campaigns = []
    for i, day in enumerate(send_days):
        kind = "push" if i % 2 == 0 else "coupon"
        campaigns.append(Campaign(f"cmp{i + 1:02d}_{kind}", kind, day, int(rng.integers(9 * 3600, 12 * 3600))))
    eligible = np.array(
        [pop.push_opt_in & (pop.signup_day <= c.day - MIN_TENURE_DAYS) for c in campaigns], dtype=bool
    ).reshape(len(campaigns), pop.n)
    assigned = rng.random((len(campaigns), pop.n)) < TREATMENT_SHARE
    return CampaignPlan(campaigns, eligible, eligible & assigned)
