"""What the best possible model of the log could know: the state posterior given the log.

The truth starts from each user's latent state on the cutoff, which no log reveals: a user
on the first day of a decline behaves like an active one. :class:`StateObserver` runs the
Bayes filter (a hidden-Markov forward pass) over the same day-by-day observations the log
records, with every user's true traits known. Forecasts from its posterior are what a
perfect model of the log could reach, a tighter ceiling than the truth, and still an
optimistic one (a model has to learn the traits from the log too).

Only activity that depends on the state enters the likelihood: sessions, check-ins,
tickets and push opens given a send. Views, carts, purchases and amounts are drawn per
session with state-free probabilities, so given the session counts they carry nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from churnkit.simulate import dynamics as dyn
from churnkit.simulate.campaigns import CampaignPlan
from churnkit.simulate.population import Population

_TINY = 1e-300


@dataclass(frozen=True)
class DayObservation:
    """One day's state-dependent activity per user (length-n arrays)."""

    sessions: np.ndarray
    checkins: np.ndarray
    tickets: np.ndarray
    push_sent: np.ndarray
    """Routine (non-campaign) push sent: the open/no-open outcome is informative."""
    push_opened: np.ndarray
    campaign_sent: np.ndarray
    """Treated by a campaign sent that day."""
    campaign_opened: np.ndarray


def _add_log_poisson(ll: np.ndarray, k: np.ndarray, lam: np.ndarray) -> None:
    """Add log P(k | lam) to ``ll`` in place, without the log k! term (the same for every
    state, so it cancels). Only users with k > 0 need a log: on most days that is few."""
    ll -= lam
    hit = np.flatnonzero(k > 0)
    if len(hit):
        ll[:, hit] += k[hit] * np.log(np.maximum(lam[:, hit], _TINY))


def _add_log_bernoulli(ll: np.ndarray, asked: np.ndarray, hit: np.ndarray, p: np.ndarray) -> None:
    """Add log P(outcome) for the users ``asked`` (e.g. sent a push); ``p`` is (N_STATES, n)."""
    cols = np.flatnonzero(asked)
    if len(cols):
        q = np.clip(p[:, cols], 1e-12, 1.0 - 1e-12)
        ll[:, cols] += np.where(hit[cols], np.log(q), np.log1p(-q))


class StateObserver:
    """Posterior over each user's state, updated one simulated day at a time."""

    def __init__(self, pop: Population, plan: CampaignPlan):
        self.pop = pop
        self.plan = plan
        self.m = dyn.engagement_table(pop)
        self.dist = dyn.initial_distribution(pop)
        """P(state on the current day | activity on the days before)."""

    def log_likelihood(self, t: int, weekday: int, obs: DayObservation) -> np.ndarray:
        """(N_STATES, n) log P(day ``t``'s activity | state), up to a per-user constant."""
        pop, m = self.pop, self.m
        rates = dyn.day_rates(pop, m, weekday, self.plan.coupon_valid(t))
        ll = np.zeros_like(m)
        _add_log_poisson(ll, obs.sessions, rates.sessions + dyn.ONBOARDING_SESSIONS * (pop.signup_day == t))
        _add_log_poisson(ll, obs.checkins, rates.checkins)
        _add_log_poisson(ll, obs.tickets, rates.tickets)
        _add_log_bernoulli(ll, obs.push_sent, obs.push_opened, pop.push_open * m)
        if obs.campaign_sent.any():
            _add_log_bernoulli(ll, obs.campaign_sent, obs.campaign_opened, dyn.campaign_open_prob(pop, m))
        return ll

    def update(self, t: int, weekday: int, obs: DayObservation) -> None:
        """Condition on day ``t``'s activity, then move to day ``t + 1`` (as the state does)."""
        alive = self.pop.signup_day <= t
        ll = np.where(alive, self.log_likelihood(t, weekday, obs), 0.0)
        possible = self.dist > 0
        logp = np.where(possible, np.log(np.where(possible, self.dist, 1.0)) + ll, -np.inf)
        post = np.exp(logp - logp.max(axis=0))
        post /= post.sum(axis=0)
        nxt = dyn.propagate(post, dyn.hazard(self.pop, t), self.pop, self.plan.treatment(self.pop, t))
        self.dist = np.where(alive, nxt, post)
