"""Fixtures shared by the integration tests of scoring and the service."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

import pytest

from churnkit.config import IngestSettings
from churnkit.events.ingest import ingest
from churnkit.events.sources import resolve_source
from churnkit.simulate import SimulationParams, simulate, write_simulation
from churnkit.train import TrainOptions, promote_problem, run_training
from churnkit.workspace import Workspace

GA4_PROBLEMS = ("churn_ga4", "purchase_ga4", "revenue_ga4")


@dataclass(frozen=True)
class TrainedWorkspace:
    ws: Workspace
    end: dt.date
    """The simulation's end: events are ingested up to its midnight."""


@pytest.fixture(scope="session")
def simulated_workspace(tmp_path_factory) -> Callable[[str, SimulationParams], Workspace]:
    """Make a workspace holding a simulation, ingested up to the midnight of its end."""

    def make(name: str, params: SimulationParams) -> Workspace:
        ws = Workspace(tmp_path_factory.mktemp(name))
        write_simulation(simulate(params), ws.simulation_dir)
        as_of = dt.datetime.combine(params.end, dt.time(), dt.UTC)
        ingest([ws.simulation_dir], resolve_source("simulator"), ws, as_of=as_of, settings=IngestSettings())
        return ws

    return make


@pytest.fixture(scope="module")
def trained_workspace(simulated_workspace) -> TrainedWorkspace:
    """700 simulated users over 140 days, ingested, the three GA4 problems trained (one
    Optuna trial) and promoted. One per test module: tests change its champions."""
    params = SimulationParams(users=700, days=140, seed=11, horizons=[7, 28], cutoff_step_days=7)
    ws = simulated_workspace("trained", params)
    for problem in GA4_PROBLEMS:
        run_training(ws, problem, TrainOptions(trials=1, seed=3, bgnbd=False))
        promote_problem(ws, problem)
    return TrainedWorkspace(ws, params.end)
