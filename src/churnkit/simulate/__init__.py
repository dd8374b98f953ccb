"""Synthetic app/e-commerce behaviour logs with known ground truth.

``simulate(params)`` draws a population, a campaign plan and day-by-day behaviour, then
computes the exact truth at the requested cutoffs; ``flows.simulate`` puts it on disk:

- ``events.parquet``: the log, already in the event contract;
- ``users.parquet``: signup time and attributes;
- ``traits.parquet``: latent traits per user (truth);
- ``truth.parquet``: per user, cutoff and horizon, P(churn), P(purchase), expected revenue;
- ``campaigns.parquet`` / ``assignments.parquet``: campaigns; each eligible user's A/B arm,
  assignment time (the send) and outcome window, as ingest reads an assignments table, with
  the user's true effect;
- ``simulation.json``: parameters and counts.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnkit import __version__
from churnkit.config import SimulateSettings
from churnkit.simulate.campaigns import CampaignPlan, plan_campaigns
from churnkit.simulate.engine import CHANNELS, EVENTS, VARIANTS, RawEvents, run_days
from churnkit.simulate.observer import StateObserver
from churnkit.simulate.population import CATEGORIES, Population, draw_population
from churnkit.simulate.truth import campaign_truth, cutoff_truth

__all__ = ["SimulateSettings", "SimulationResult", "events_table", "simulate"]

TABLES = ("events", "users", "traits", "truth", "campaigns", "assignments")
"""The Parquet files a simulation writes, in order."""

Progress = Callable[[float, float | None, str | None], None]


@dataclass
class SimulationResult:
    params: SimulateSettings
    population: Population
    plan: CampaignPlan
    raw: RawEvents
    truth: pd.DataFrame
    assignments: pd.DataFrame

    @property
    def n_users(self) -> int:
        return self.population.n

    @property
    def n_events(self) -> int:
        return len(self.raw)

    @property
    def start(self) -> np.datetime64:
        return np.datetime64(self.params.start, "D")

    def events(self) -> pa.Table:
        return events_table(self.raw, self.population, self.plan, self.start)

    def users(self) -> pd.DataFrame:
        return self.population.users_frame(self.start)

    def table(self, name: str) -> pa.Table:
        """One of :data:`TABLES` as Arrow."""
        make = {
            "events": self.events,
            "users": lambda: frame_to_arrow(self.users()),
            "traits": lambda: frame_to_arrow(self.population.traits_frame()),
            "truth": lambda: frame_to_arrow(self.truth),
            "campaigns": lambda: frame_to_arrow(self.plan.frame(self.start)),
            "assignments": lambda: frame_to_arrow(self.assignments),
        }
        return make[name]()

    def meta(self) -> dict:
        """Parameters and counts, written as ``simulation.json``."""
        p = self.params
        return {
            "churnkit_version": __version__,
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "params": json.loads(p.model_dump_json()),
            "users": self.n_users,
            "events": self.n_events,
            "period": {"start": str(p.start), "end_exclusive": str(p.end)},
            "cutoffs": [str(p.start + dt.timedelta(days=c)) for c in p.cutoff_days()],
            "campaigns": [c.campaign_id for c in self.plan.campaigns],
        }


def simulate(params: SimulateSettings, progress: Progress | None = None) -> SimulationResult:
    """Run one simulation; the same params (seed included) give the same result."""
    rng = np.random.default_rng(params.seed)
    pop = draw_population(rng, params.users, params.days, params.prestart_share)
    plan = plan_campaigns(pop, params.days, params.campaign_first_day, params.campaign_every_days, rng)
    cutoffs = params.cutoff_days()
    keep = set(cutoffs) | {c.day for c in plan.campaigns}
    weekday = params.start.weekday()
    observer = StateObserver(pop, plan) if params.observable else None
    raw, states, believed = run_days(pop, plan, params.days, weekday, keep, rng, progress, observer)
    start = np.datetime64(params.start, "D")
    truth = cutoff_truth(
        pop, plan, states, cutoffs, params.horizons, params.days, start, weekday, progress,
        believed=believed if observer is not None else None,
    )
    assignments = campaign_truth(pop, plan, states, params.campaign_horizon_days, weekday, start)
    return SimulationResult(params, pop, plan, raw, truth, assignments)


def _lookup(values: np.ndarray, codes: np.ndarray) -> pa.Array:
    """Strings for integer codes; code -1 becomes null."""
    return pc.take(pa.array(values.astype(str)), pa.array(codes.astype(np.int32), mask=codes < 0))


def events_table(raw: RawEvents, pop: Population, plan: CampaignPlan, start: np.datetime64) -> pa.Table:
    """The event log in the contract's columns, ordered by time then user."""
    order = np.lexsort((raw.user, raw.ts_us))
    start_us = start.astype("datetime64[us]").astype(np.int64)
    camp_ids = np.array([c.campaign_id for c in plan.campaigns] or ["none"])
    campaign = raw.campaign[order]
    return pa.table(
        {
            "user_id": pc.take(pa.array(pop.user_ids), pa.array(raw.user[order])),
            "ts": pa.array(raw.ts_us[order] + start_us, type=pa.timestamp("us", tz="UTC")),
            "event": _lookup(EVENTS, raw.event[order]),
            "amount": pa.array(raw.amount[order], mask=np.isnan(raw.amount[order]), type=pa.float64()),
            "category": _lookup(CATEGORIES, raw.category[order]),
            "channel": _lookup(CHANNELS, raw.channel[order]),
            "campaign_id": _lookup(camp_ids, campaign),
            "variant": _lookup(VARIANTS, np.where(campaign >= 0, 0, -1)),
        }
    )


def frame_to_arrow(df: pd.DataFrame) -> pa.Table:
    """Arrow table with tz-aware columns as UTC microsecond timestamps."""
    cols = {}
    for name, s in df.items():
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            naive = s.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[us]")
            cols[name] = pa.array(naive, type=pa.timestamp("us", tz="UTC"))
        elif isinstance(s.dtype, pd.StringDtype):  # text, also when there are no rows
            cols[name] = pa.array(s.to_numpy(), type=pa.string(), from_pandas=True)
        else:
            cols[name] = pa.array(s.to_numpy(), from_pandas=True)
    return pa.table(cols)
