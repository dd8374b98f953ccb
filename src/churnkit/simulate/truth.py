"""Exact ground truth from the latent state at a cutoff (no Monte-Carlo noise).

From each user's state on the cutoff day, three state distributions are propagated day by
day with :mod:`dynamics`: one restricted to paths with no activity (gives P(churn)), one
restricted to paths with no purchase (gives P(purchase)), and the unconditional one
(gives expected revenue). The known campaign plan is part of the future, as in reality a
CRM team knows its calendar.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from churnkit.simulate import dynamics as dyn
from churnkit.simulate.campaigns import CampaignPlan
from churnkit.simulate.population import Population

TRUTH_OF_KIND = {"churn": "p_churn", "purchase": "p_purchase", "revenue": "expected_revenue"}
"""The truth column a problem of each kind is compared with (``truth.parquet``)."""
OBSERVABLE_SUFFIX = "_observable"
"""The same forecast from the Bayes filter of the user's state given their log (the most a
model of the log could reach); present unless the simulation ran with ``observable: false``."""


def one_hot(state: np.ndarray) -> np.ndarray:
    """(N_STATES, n) distribution that is certain of each user's ``state``."""
    dist = np.zeros((dyn.N_STATES, len(state)))
    dist[state, np.arange(len(state))] = 1.0
    return dist


def forward(
    pop: Population,
    plan: CampaignPlan,
    idx: np.ndarray,
    dist0: np.ndarray,
    day0: int,
    horizons: list[int],
    start_weekday: int,
) -> dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """For users ``idx`` with state distribution ``dist0`` (N_STATES, len(idx)) on ``day0``:
    per horizon H, (P(no activity in H days), P(a purchase in H days), expected revenue in
    H days). Everything is linear in ``dist0``, so a posterior gives the forecast from it."""
    sub = pop.subset(idx)
    m = dyn.engagement_table(sub)
    n = len(idx)
    dist = np.repeat(np.asarray(dist0, dtype="float64")[:, None, :], 3, axis=1)  # quiet, no-purchase, all paths
    revenue = np.zeros(n)
    out: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
    wanted = set(horizons)
    plain: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}  # per weekday, no campaign
    for d in range(max(horizons)):
        t = day0 + d
        weekday = (start_weekday + t) % 7
        coupon = plan.coupon_valid(t, only=idx)
        treated = plan.treated_on(t, only=idx)
        special = treated is not None or coupon.any()
        if special or weekday not in plain:
            rates = dyn.day_rates(sub, m, weekday, coupon)
            camp_open = None if treated is None else dyn.campaign_open_prob(sub, m) * treated
            buy_rate = rates.sessions * rates.buy_prob
            today = (dyn.no_activity_prob(rates, camp_open), np.exp(-buy_rate), buy_rate * rates.amount_mean)
            if not special:
                plain[weekday] = today
        else:
            today = plain[weekday]
        q_quiet, q_no_buy, revenue_rate = today
        revenue = revenue + (dist[:, 2] * revenue_rate).sum(axis=0)
        dist[:, 0] *= q_quiet
        dist[:, 1] *= q_no_buy
        if d + 1 in wanted:
            out[d + 1] = (dist[:, 0].sum(axis=0), 1.0 - dist[:, 1].sum(axis=0), revenue.copy())
        dist = dyn.propagate(dist, dyn.hazard(sub, t), sub, plan.treatment(sub, t, only=idx))
    return out


def cutoff_truth(
    pop: Population,
    plan: CampaignPlan,
    states: dict[int, np.ndarray],
    cutoff_days: list[int],
    horizons: list[int],
    days: int,
    start: np.datetime64,
    start_weekday: int,
    progress: Callable[[float, float | None, str | None], None] | None = None,
    believed: dict[int, np.ndarray] | None = None,
) -> pd.DataFrame:
    """Truth for every user signed up before each cutoff, for every horizon.

    With ``believed`` (the :class:`~churnkit.simulate.observer.StateObserver` posteriors on
    the cutoffs) also the ``*_observable`` forecasts: the best a model of the log can do.
    """
    frames = []
    m_all = dyn.engagement_table(pop)
    for i, c in enumerate(cutoff_days):
        idx = np.flatnonzero(pop.signup_day < c)
        state0 = states[c][idx]
        res = forward(pop, plan, idx, one_hot(state0), c, horizons, start_weekday)
        seen = None if believed is None else forward(pop, plan, idx, believed[c][:, idx], c, horizons, start_weekday)
        for h in sorted(horizons):
            p_quiet, p_buy, rev = res[h]
            frame = pd.DataFrame(
                {
                    "user_id": pop.user_ids[idx],
                    "cutoff": pd.Timestamp(start + np.timedelta64(c, "D")).tz_localize("UTC"),
                    "horizon_days": np.int32(h),
                    "state": dyn.STATE_NAMES[state0],
                    "engagement": m_all[state0, idx],
                    TRUTH_OF_KIND["churn"]: p_quiet,
                    TRUTH_OF_KIND["purchase"]: p_buy,
                    TRUTH_OF_KIND["revenue"]: rev,
                    "window_complete": c + h <= days,
                }
            )
            if seen is not None:
                frame = frame.assign(**{
                    f"{TRUTH_OF_KIND[kind]}{OBSERVABLE_SUFFIX}": value
                    for kind, value in zip(("churn", "purchase", "revenue"), seen[h], strict=True)
                })
            frames.append(frame)
        if progress is not None:
            progress(i + 1, len(cutoff_days), f"truth at cutoff {i + 1}/{len(cutoff_days)}")
    if not frames:
        return pd.DataFrame(
            columns=["user_id", "cutoff", "horizon_days", "state", "engagement", *TRUTH_OF_KIND.values(),
                     "window_complete"]
        )
    return pd.concat(frames, ignore_index=True)


def campaign_truth(
    pop: Population,
    plan: CampaignPlan,
    states: dict[int, np.ndarray],
    horizon: int,
    start_weekday: int,
    start: np.datetime64,
) -> pd.DataFrame:
    """Each eligible user's assignment and true individual effect of each campaign.

    The first columns are an assignments table as ingest reads it (``user_id``,
    ``campaign_id``, ``variant``, ``assigned_ts``: the campaign's send time, ``horizon_days``);
    the rest is truth. Effect = outcome if treated minus outcome if not, both from the state
    on the send day, over ``horizon`` days; later campaigns keep their actual assignment in
    both arms.
    """
    frames = []
    for i, camp in enumerate(plan.campaigns):
        idx = np.flatnonzero(plan.eligible[i])
        if len(idx) == 0:
            continue
        state0 = states[camp.day][idx]
        arms = {}
        for arm in (True, False):
            treated = plan.treated.copy()
            treated[i, idx] = arm
            arm_plan = dataclasses.replace(plan, treated=treated)
            arms[arm] = forward(pop, arm_plan, idx, one_hot(state0), camp.day, [horizon], start_weekday)[horizon]
        (q1, b1, r1), (q0, b0, r0) = arms[True], arms[False]
        sent = start.astype("datetime64[us]") + np.timedelta64(camp.day, "D") + np.timedelta64(camp.send_sec, "s")
        frames.append(
            pd.DataFrame(
                {
                    "user_id": pop.user_ids[idx],
                    "campaign_id": camp.campaign_id,
                    "variant": np.where(plan.treated[i, idx], "treatment", "control"),
                    "assigned_ts": pd.Timestamp(sent).tz_localize("UTC"),
                    "horizon_days": np.int32(horizon),
                    "state_at_send": dyn.STATE_NAMES[state0],
                    "p_churn_treated": q1,
                    "p_churn_control": q0,
                    "effect_churn": q1 - q0,
                    "p_purchase_treated": b1,
                    "p_purchase_control": b0,
                    "effect_purchase": b1 - b0,
                    "revenue_treated": r1,
                    "revenue_control": r0,
                    "effect_revenue": r1 - r0,
                }
            )
        )
    if frames:
        return pd.concat(frames, ignore_index=True)
    return pd.DataFrame(  # no campaign in the period: the same columns, no rows
        {
            **{c: pd.Series([], dtype="str") for c in ("user_id", "campaign_id", "variant")},
            "assigned_ts": pd.Series([], dtype="datetime64[us, UTC]"),
            "horizon_days": pd.Series([], dtype="int32"),
            "state_at_send": pd.Series([], dtype="str"),
            **{
                column: pd.Series([], dtype="float64")
                for what in ("p_churn", "p_purchase", "revenue")
                for column in (f"{what}_treated", f"{what}_control", f"effect_{what.removeprefix('p_')}")
            },
        }
    )
