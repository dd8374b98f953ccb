"""Day-by-day sampling of behaviour, vectorised over users.

Each simulated day draws every user's activity from :mod:`dynamics`, expands sessions
into views, add-to-carts, purchases and coupon redemptions with timestamps inside the
day, then moves each user's latent state on. The states on the truth cutoffs and the
campaign days are kept so truth can start from them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from churnkit.contracts import EVENT_TYPES
from churnkit.simulate import dynamics as dyn
from churnkit.simulate.campaigns import CampaignPlan
from churnkit.simulate.observer import DayObservation, StateObserver
from churnkit.simulate.population import CATEGORIES, SPEND_SIGMA, Population

EVENTS = np.array(EVENT_TYPES)
"""Event codes index the contract's vocabulary."""
E = {name: np.int8(i) for i, name in enumerate(EVENTS)}
CHANNELS = np.array(["app", "web", "push", "support"])
VARIANTS = np.array(["treatment"])

DIURNAL = np.array(
    [0.6, 0.3, 0.2, 0.15, 0.15, 0.3, 0.8, 1.5, 2.2, 2.6, 2.8, 3.0, 3.4, 3.2, 3.0, 3.0, 3.2, 3.6, 4.4, 5.0, 5.2, 4.6, 3.2]
)
DIURNAL = DIURNAL / DIURNAL.sum()
"""Session start hour (0..22, so every session ends within its day)."""
DAY_END_SEC = 86_399.0


@dataclass
class EventColumns:
    """Columnar event buffers for one day; codes index EVENTS/CHANNELS/CATEGORIES, -1 = null."""

    user: list[np.ndarray] = field(default_factory=list)
    sec: list[np.ndarray] = field(default_factory=list)
    event: list[np.ndarray] = field(default_factory=list)
    amount: list[np.ndarray] = field(default_factory=list)
    category: list[np.ndarray] = field(default_factory=list)
    channel: list[np.ndarray] = field(default_factory=list)
    campaign: list[np.ndarray] = field(default_factory=list)

    def add(
        self,
        user: np.ndarray,
        sec: np.ndarray,
        event: int,
        *,
        amount: np.ndarray | None = None,
        category: np.ndarray | None = None,
        channel: np.ndarray | int = -1,
        campaign: np.ndarray | int = -1,
    ) -> None:
        n = len(user)
        if n == 0:
            return
        self.user.append(user.astype(np.int32))
        self.sec.append(sec.astype(np.float64))
        self.event.append(np.full(n, event, dtype=np.int8))
        self.amount.append(amount if amount is not None else np.full(n, np.nan))
        self.category.append(category.astype(np.int8) if category is not None else np.full(n, -1, np.int8))
        self.channel.append(np.broadcast_to(np.asarray(channel, dtype=np.int8), (n,)).copy())
        self.campaign.append(np.broadcast_to(np.asarray(campaign, dtype=np.int16), (n,)).copy())


@dataclass
class RawEvents:
    """All simulated events as parallel arrays (codes, not strings, to stay small)."""

    user: np.ndarray
    ts_us: np.ndarray
    event: np.ndarray
    amount: np.ndarray
    category: np.ndarray
    channel: np.ndarray
    campaign: np.ndarray

    def __len__(self) -> int:
        return len(self.user)


def _times(rng: np.random.Generator, lo: np.ndarray, hi: float) -> np.ndarray:
    return lo + rng.random(len(lo)) * np.maximum(hi - lo, 0.0)


def _group_cumsum(values: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Cumulative sum restarting at each group (groups laid out consecutively)."""
    cs = np.cumsum(values)
    ends = np.cumsum(counts)
    before = np.repeat(np.concatenate([[0.0], cs[ends[:-1] - 1]]) if len(counts) else [], counts)
    return cs - before


def _draw_category(rng: np.random.Generator, pop: Population, users: np.ndarray) -> np.ndarray:
    u = rng.random(len(users))
    return (pop.category_cdf[users] < u[:, None]).sum(axis=1).clip(0, len(CATEGORIES) - 1)


def _sessions(
    rng: np.random.Generator,
    pop: Population,
    buf: EventColumns,
    n_sessions: np.ndarray,
    lo_sec: np.ndarray,
    buy_prob: np.ndarray,
    coupon_campaign: np.ndarray,
) -> None:
    """Expand session counts into session, view, cart, purchase and redemption events."""
    su = np.repeat(np.arange(pop.n), n_sessions)
    ns = len(su)
    if ns == 0:
        return
    hour_start = rng.choice(len(DIURNAL), size=ns, p=DIURNAL) * 3600.0 + rng.random(ns) * 3600.0
    onboarding = lo_sec[su] > 0
    start = np.where(onboarding, _times(rng, lo_sec[su], 82_800.0), hour_start)
    channel = np.where(rng.random(ns) < pop.app_share[su], 0, 1).astype(np.int8)
    buf.add(su, start, E["session"], channel=channel)

    n_views = 1 + rng.poisson(1.5, ns)
    vs = np.repeat(np.arange(ns), n_views)
    view_off = np.minimum(_group_cumsum(rng.exponential(45.0, len(vs)), n_views), 3000.0)
    view_cat = _draw_category(rng, pop, su[vs])
    buf.add(su[vs], start[vs] + view_off, E["view"], category=view_cat, channel=channel[vs])

    last_view = np.cumsum(n_views) - 1
    buy = rng.random(ns) < buy_prob[su]
    cart = buy | (rng.random(ns) < pop.cart_prob[su])
    c = np.flatnonzero(cart)
    cart_sec = start[c] + view_off[last_view[c]] + 5.0 + rng.random(len(c)) * 60.0
    cart_cat = view_cat[last_view[c]]
    buf.add(su[c], cart_sec, E["add_to_cart"], category=cart_cat, channel=channel[c])

    is_buy = buy[c]
    b = c[is_buy]
    buy_sec = cart_sec[is_buy] + 30.0 + rng.random(len(b)) * 300.0
    camp = coupon_campaign[su[b]]
    discount = np.where(camp >= 0, dyn.COUPON_DISCOUNT, 1.0)
    amount = np.round(np.exp(pop.spend_mu[su[b]] + SPEND_SIGMA * rng.standard_normal(len(b))) * discount, 2)
    amount = np.maximum(amount, 0.01)
    buf.add(su[b], buy_sec, E["purchase"], amount=amount, category=cart_cat[is_buy], channel=channel[b])
    r = camp >= 0
    buf.add(su[b][r], buy_sec[r] + 0.5, E["coupon_redeem"], channel=channel[b][r], campaign=camp[r])


def run_days(
    pop: Population,
    plan: CampaignPlan,
    days: int,
    start_weekday: int,
    keep_days: set[int],
    rng: np.random.Generator,
    progress: Callable[[float, float | None, str | None], None] | None = None,
    observer: StateObserver | None = None,
) -> tuple[RawEvents, dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Simulate ``days`` days; returns events, the latent state kept on ``keep_days`` and,
    with an ``observer``, its state posterior on those days (it draws no random numbers, so
    the events are the same with or without one)."""
    n = pop.n
    m_table = dyn.engagement_table(pop)
    state = dyn.initial_state(pop, rng)
    rows = np.arange(n)
    kept: dict[int, np.ndarray] = {}
    believed: dict[int, np.ndarray] = {}
    parts: list[tuple[int, EventColumns]] = []

    for t in range(days):
        if t in keep_days:
            kept[t] = state.copy()
            if observer is not None:
                believed[t] = observer.dist.copy()
        alive = pop.signup_day <= t
        m = np.where(alive, m_table[state, rows], 0.0)
        coupon = plan.coupon_valid(t)
        rates = dyn.day_rates(pop, m, (start_weekday + t) % 7, coupon)
        signup_today = pop.signup_day == t
        lo_sec = np.where(signup_today, pop.signup_sec.astype(float), 0.0)
        buf = EventColumns()

        n_sessions = rng.poisson(rates.sessions + dyn.ONBOARDING_SESSIONS * signup_today)
        _sessions(rng, pop, buf, n_sessions, lo_sec, rates.buy_prob, plan.coupon_campaign(t))

        n_checkins = rng.poisson(rates.checkins)
        ck = np.repeat(rows, n_checkins)
        buf.add(ck, _times(rng, lo_sec[ck], DAY_END_SEC), E["checkin"], channel=0)
        n_tickets = rng.poisson(rates.tickets)
        tk = np.repeat(rows, n_tickets)
        buf.add(tk, _times(rng, lo_sec[tk], DAY_END_SEC), E["support_ticket"], channel=3)

        sent = alive & pop.push_opt_in & (rng.random(n) < dyn.PUSH_SEND_PROB)
        opened = sent & (rng.random(n) < pop.push_open * m)
        push_sec = np.maximum(10 * 3600.0 + rng.random(n) * 10 * 3600.0, lo_sec + 60.0)
        open_sec = push_sec + 60.0 + rng.random(n) * 7140.0
        buf.add(rows[sent], push_sec[sent], E["push_sent"], channel=2)
        buf.add(rows[opened], open_sec[opened], E["push_open"], channel=2)

        campaign_sent = np.zeros(n, dtype=bool)
        campaign_opened = np.zeros(n, dtype=bool)
        for i in plan.on_day(t):
            camp = plan.campaigns[i]
            treated = plan.treated[i]
            opens = treated & (rng.random(n) < dyn.campaign_open_prob(pop, m))
            campaign_sent |= treated
            campaign_opened |= opens
            send_sec = np.full(n, float(camp.send_sec))
            buf.add(rows[treated], send_sec[treated], E["push_sent"], channel=2, campaign=i)
            o_sec = send_sec + 60.0 + rng.random(n) * 3 * 3600.0
            buf.add(rows[opens], o_sec[opens], E["push_open"], channel=2, campaign=i)

        parts.append((t, buf))
        if observer is not None:
            seen = DayObservation(n_sessions, n_checkins, n_tickets, sent, opened, campaign_sent, campaign_opened)
            observer.update(t, (start_weekday + t) % 7, seen)
        h = dyn.hazard(pop, t)
        nxt = dyn.sample_next(state, h, pop, plan.treatment(pop, t), rng)
        state = np.where(alive, nxt, state).astype(np.int8)
        if progress is not None and (t % 7 == 0 or t == days - 1):
            progress(t + 1, days, f"day {t + 1}/{days}")
    if days in keep_days:
        kept[days] = state.copy()
        if observer is not None:
            believed[days] = observer.dist.copy()
    return _assemble(parts), kept, believed


def _assemble(parts: list[tuple[int, EventColumns]]) -> RawEvents:
    def cat(name: str, dtype: type) -> np.ndarray:
        arrays = [a for _, b in parts for a in getattr(b, name)]
        return np.concatenate(arrays).astype(dtype) if arrays else np.empty(0, dtype)

    day = np.concatenate([np.full(sum(len(a) for a in b.user), t, np.int64) for t, b in parts]) if parts else np.empty(0, np.int64)
    sec = np.minimum(cat("sec", np.float64), DAY_END_SEC + 0.999)
    ts_us = day * 86_400_000_000 + np.floor(sec * 1e6).astype(np.int64)
    return RawEvents(
        user=cat("user", np.int32),
        ts_us=ts_us,
        event=cat("event", np.int8),
        amount=cat("amount", np.float64),
        category=cat("category", np.int8),
        channel=cat("channel", np.int8),
        campaign=cat("campaign", np.int16),
    )
