"""The latent process: one definition used both to sample behaviour and to compute truth.

Each user is in one of ``N_STATES`` states on each day:

- ``ACTIVE`` (0): engaged at the user's own rates;
- ``DECLINE_k`` (1..K): disengaging for k days, engagement ``exp(-k / decay_tau)``; this
  is the early-warning period real products see before a user leaves;
- ``CHURNED`` (K+1): no activity at all (pushes still arrive) until a rare comeback.

Events on day t are emitted from the state of day t; the state then moves to day t+1.
All activity events are independent Poisson/Bernoulli draws given the state, so the
probability of "no activity on day t" is a closed form per state. The truth module
propagates state distributions with these same functions, so simulated outcomes and
true probabilities agree by construction (and a test checks it empirically).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnkit.simulate.population import SPEND_SIGMA, Population

K_DECLINE = 21
ACTIVE = 0
CHURNED = K_DECLINE + 1
N_STATES = K_DECLINE + 2
STATE_NAMES = np.array(["active"] + ["declining"] * K_DECLINE + ["churned"])

WEEKLY = np.array([0.92, 0.9, 0.94, 0.98, 1.04, 1.14, 1.08])
"""Session-rate multiplier by weekday, Monday first (mean 1)."""
PUSH_SEND_PROB = 0.12
"""Daily chance that an opted-in user gets a routine (non-campaign) push."""
CAMPAIGN_OPEN_WHEN_CHURNED = 0.15
"""Engagement factor for opening a campaign push while churned (the win-back door)."""
COUPON_DISCOUNT = 0.85
COUPON_DAYS = 7
ONBOARDING_SESSIONS = 1.0
"""Extra expected sessions on the signup day."""
TICKET_DECLINE_BOOST = 4.0
"""Support tickets rise as engagement falls (frustration precedes leaving)."""


def engagement_table(pop: Population) -> np.ndarray:
    """(N_STATES, n) engagement multiplier per state and user.

    State-first layout: per-user arrays broadcast against it as they are, and each
    state's row is contiguous, which keeps :func:`propagate` fast.
    """
    k = np.arange(N_STATES, dtype=float)
    m = np.exp(-k[:, None] / pop.decay_tau[None, :])
    m[ACTIVE] = 1.0
    m[CHURNED] = 0.0
    return m


def hazard(pop: Population, day: int) -> np.ndarray:
    """Daily probability of starting to disengage; higher in the first weeks of tenure."""
    tenure = np.maximum(day - pop.signup_day, 0)
    return np.minimum(pop.churn_hazard * (1.0 + 2.0 * np.exp(-tenure / 30.0)), 0.5)


@dataclass(frozen=True)
class DayRates:
    """Expected counts of each activity on one day, for given engagement values."""

    sessions: np.ndarray
    checkins: np.ndarray
    tickets: np.ndarray
    push_open_prob: np.ndarray
    """P(open a routine push) = P(sent) * P(open | sent); independent of the sessions."""
    buy_prob: np.ndarray
    amount_mean: np.ndarray


def day_rates(pop: Population, m: np.ndarray, weekday: int, coupon: np.ndarray) -> DayRates:
    """Rates given engagement ``m``: (n,) for sampling, (N_STATES, n) for truth."""
    alive = m > 0
    sessions = pop.session_rate * WEEKLY[weekday] * m
    checkins = pop.checkin_rate * m
    tickets = pop.ticket_rate * (1.0 + TICKET_DECLINE_BOOST * (1.0 - m)) * alive
    push_open_prob = PUSH_SEND_PROB * (pop.push_opt_in * pop.push_open) * m
    lift = np.where(coupon, pop.coupon_lift, 1.0)
    buy_prob = np.minimum(pop.buy_prob * lift, 1.0)
    amount_mean = np.exp(pop.spend_mu + SPEND_SIGMA**2 / 2) * np.where(coupon, COUPON_DISCOUNT, 1.0)
    return DayRates(sessions, checkins, tickets, push_open_prob, buy_prob, amount_mean)


def campaign_open_prob(pop: Population, m: np.ndarray) -> np.ndarray:
    """P(open a campaign push) given engagement; churned users open rarely."""
    factor = np.where(m > 0, m, CAMPAIGN_OPEN_WHEN_CHURNED)
    return pop.push_open * factor


def no_activity_prob(rates: DayRates, campaign_open: np.ndarray | None) -> np.ndarray:
    """P(no activity event on the day): sessions, check-ins, tickets and push opens."""
    q = np.exp(-(rates.sessions + rates.checkins + rates.tickets)) * (1.0 - rates.push_open_prob)
    if campaign_open is not None:
        q = q * (1.0 - campaign_open)
    return q


@dataclass(frozen=True)
class Treatment:
    """Per-user probabilities that a campaign moves the state on its send day."""

    save: np.ndarray
    """Declining -> active."""
    winback: np.ndarray
    """Churned -> active."""
    annoy: np.ndarray
    """Active -> declining (users put off by the contact)."""


def propagate(dist: np.ndarray, h: np.ndarray, pop: Population, treat: Treatment | None) -> np.ndarray:
    """One day's transition of state distributions shaped (N_STATES, ..., n); the middle
    axes may stack several distributions of the same users."""
    d = dist
    forced_active: np.ndarray | float = 0.0
    forced_decline: np.ndarray | float = 0.0
    decl = slice(1, CHURNED)
    if treat is not None:
        d = dist.copy()
        forced_active = dist[decl].sum(axis=0) * treat.save + dist[CHURNED] * treat.winback
        forced_decline = dist[ACTIVE] * treat.annoy
        d[ACTIVE] *= 1.0 - treat.annoy
        d[decl] *= 1.0 - treat.save
        d[CHURNED] *= 1.0 - treat.winback
    rec = pop.recover_prob
    back = pop.comeback_prob
    new = np.empty_like(d)
    declining = d[decl]
    new[ACTIVE] = d[ACTIVE] * (1 - h) + rec * declining.sum(axis=0) + back * d[CHURNED] + forced_active
    new[1] = d[ACTIVE] * h + forced_decline
    new[2:CHURNED] = declining[:-1] * (1 - rec)
    new[CHURNED] = declining[-1] * (1 - rec) + d[CHURNED] * (1 - back)
    return new


def sample_next(
    state: np.ndarray, h: np.ndarray, pop: Population, treat: Treatment | None, rng: np.random.Generator
) -> np.ndarray:
    """Draw each user's next state; the same probabilities as :func:`propagate`."""
    n = len(state)
    u_treat = rng.random(n)
    u = rng.random(n)
    is_active = state == ACTIVE
    is_churned = state == CHURNED
    is_declining = ~is_active & ~is_churned
    nxt = np.where(
        is_active,
        np.where(u < h, 1, ACTIVE),
        np.where(
            is_churned,
            np.where(u < pop.comeback_prob, ACTIVE, CHURNED),
            np.where(u < pop.recover_prob, ACTIVE, np.minimum(state + 1, CHURNED)),
        ),
    )
    if treat is not None:
        nxt = np.where(is_active & (u_treat < treat.annoy), 1, nxt)
        nxt = np.where(is_declining & (u_treat < treat.save), ACTIVE, nxt)
        nxt = np.where(is_churned & (u_treat < treat.winback), ACTIVE, nxt)
    return nxt.astype(np.int8)


INITIAL_ACTIVE = 0.7
INITIAL_DECLINING = 0.08
"""The existing base on the first logged day: 70% active, 8% declining (any stage alike),
the rest gone. Users who sign up later start active."""


def initial_state(pop: Population, rng: np.random.Generator) -> np.ndarray:
    """State on the first logged day, drawn from :func:`initial_distribution`."""
    n = pop.n
    u = rng.random(n)
    decline_step = rng.integers(1, K_DECLINE + 1, n)
    state = np.where(u < INITIAL_ACTIVE, ACTIVE, np.where(u < INITIAL_ACTIVE + INITIAL_DECLINING, decline_step, CHURNED))
    return np.where(pop.signup_day < 0, state, ACTIVE).astype(np.int8)


def initial_distribution(pop: Population) -> np.ndarray:
    """(N_STATES, n) probabilities of the state on the first logged day."""
    base = pop.signup_day < 0
    dist = np.zeros((N_STATES, pop.n))
    dist[ACTIVE] = np.where(base, INITIAL_ACTIVE, 1.0)
    dist[1:CHURNED] = np.where(base, INITIAL_DECLINING / K_DECLINE, 0.0)
    dist[CHURNED] = np.where(base, 1.0 - INITIAL_ACTIVE - INITIAL_DECLINING, 0.0)
    return dist
