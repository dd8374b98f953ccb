"""``churnkit demo``: the whole flow on simulated data, step by step.

simulate -> ingest -> build the GA4 training sets -> train and promote -> score -> lists ->
model monitoring (an earlier scoring run, so outcomes exist) and model cards -> campaign A/B
results -> an uplift model and a campaign-target list under a budget -> KPIs, alerts and
the weekly report.
Each step's result is handed to ``on_step`` as it finishes (the CLI prints it) and kept in
the returned :class:`DemoResult`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from churnkit.config import SimulateSettings
from churnkit.contracts import VALUE_AT_RISK, as_of_cutoff
from churnkit.errors import ChurnkitError
from churnkit.flows.alerts import AlertsOutcome, check
from churnkit.flows.build import Dataset, build_dataset
from churnkit.flows.campaigns import CampaignResult, evaluate
from churnkit.flows.ingest import ingest
from churnkit.flows.kpi import KpiOutcome, kpis
from churnkit.flows.lists import ListOutcome, make_list
from churnkit.flows.model_card import ModelCardOutcome, model_card
from churnkit.flows.monitor import MonitorOutcome, monitor
from churnkit.flows.project import Project
from churnkit.flows.promote import PromotionResult, promote_problem
from churnkit.flows.report import ReportOutcome, weekly
from churnkit.flows.score import ScoringOutcome, score
from churnkit.flows.simulate import simulate_to
from churnkit.flows.target import TargetOutcome, run_target
from churnkit.flows.train import TrainOutcome, train
from churnkit.flows.uplift import UpliftOutcome, train_uplift
from churnkit.scoring.lists import RECALL_VALUE, recall_list, risk_list
from churnkit.training.fit import TrainOptions

PROBLEMS = ("churn_ga4", "purchase_ga4", "revenue_ga4")
STEPS = ("simulate", "ingest", "build training sets", "train and promote", "score", "lists",
         "monitoring and model cards", "campaign A/B results", "uplift and target list", "KPIs, alerts and weekly report")
EARLIER_RUNS = (28,)
"""Days before the data end of the demo's extra scoring run: its outcomes are in, so
monitoring shows realised against expected beside the latest run's expected figures
(in-sample here: the demo's models saw those weeks, which the monitor says)."""
UPLIFT_PROBLEM = "uplift_revenue_28"
"""The demo's uplift problem: net revenue in the 28 days after a campaign, so the target
list is valued in currency without a value per user to configure."""


@dataclass
class DemoResult:
    simulation: dict[str, Any] = field(default_factory=dict)
    ingest: dict[str, Any] = field(default_factory=dict)
    datasets: list[Dataset] = field(default_factory=list)
    trained: list[tuple[TrainOutcome, PromotionResult]] = field(default_factory=list)
    scored: ScoringOutcome | None = None
    lists: list[ListOutcome] = field(default_factory=list)
    kpis: KpiOutcome | None = None
    alerts: AlertsOutcome | None = None
    report: ReportOutcome | None = None
    campaigns: list[CampaignResult] = field(default_factory=list)
    campaign_note: str | None = None
    uplift: UpliftOutcome | None = None
    target: TargetOutcome | None = None
    uplift_note: str | None = None
    monitoring: MonitorOutcome | None = None
    cards: list[ModelCardOutcome] = field(default_factory=list)


Step = Callable[[str, Any], None]
"""``on_step(step, result)``, called as each step (one of :data:`STEPS`) finishes."""


def demo(
    project: Project,
    *,
    users: int | None = None,
    days: int | None = None,
    seed: int | None = None,
    trials: int = 3,
    top: int = 100,
    on_step: Step | None = None,
    progress: Callable[[str], Any] | None = None,
) -> DemoResult:
    """Run the whole flow in ``project``'s workspace; the simulation comes from the config's
    ``simulate`` settings with ``users``/``days``/``seed`` overriding them."""
    done = on_step or (lambda _step, _result: None)
    say = progress or (lambda _msg: None)
    ws = project.workspace
    given = {k: v for k, v in {"users": users, "days": days, "seed": seed}.items() if v is not None}
    params = SimulateSettings.model_validate(project.config.simulate.model_dump() | given)
    out = DemoResult()

    say("simulating")
    result, paths = simulate_to(params, ws.simulation_dir)
    out.simulation = {"users": result.n_users, "days": params.days, "events": result.n_events, "paths": paths}
    done(STEPS[0], out.simulation)

    say("ingesting")
    out.ingest = ingest(project, [ws.simulation_dir], "simulator", as_of=as_of_cutoff(params.end))
    done(STEPS[1], out.ingest)

    for name in PROBLEMS:
        say(f"building {name}")
        out.datasets.append(build_dataset(project, name))
    done(STEPS[2], out.datasets)

    options = TrainOptions(trials=trials, seed=params.seed, bgnbd=False)
    for name in PROBLEMS:
        trained = train(project, name, options, progress=lambda msg, n=name: say(f"training {n}: {msg}"))
        out.trained.append((trained, promote_problem(project, name)))
    done(STEPS[3], out.trained)

    out.scored = score(project, progress=lambda msg: say(f"scoring: {msg}"))
    done(STEPS[4], out.scored)

    date = dt.date.fromisoformat(out.scored.meta["as_of"])
    out.lists = [
        make_list(project, "risk", lambda s: risk_list(s, top=top), VALUE_AT_RISK, as_of=date, fmt="csv"),
        make_list(project, "recall", lambda s: recall_list(s, top=top), RECALL_VALUE, as_of=date, fmt="csv"),
    ]
    done(STEPS[5], out.lists)

    for back in EARLIER_RUNS:
        earlier = date - dt.timedelta(days=back)
        score(project, earlier, log_run=False, progress=lambda msg, d=earlier: say(f"scoring {d}: {msg}"))
    out.monitoring = monitor(project, progress=lambda msg: say(f"monitoring {msg}"))
    for name in PROBLEMS:
        say(f"model card {name}")
        out.cards.append(model_card(project, name))
    done(STEPS[6], out)

    say("campaigns")
    try:
        out.campaigns = evaluate(project)
    except ChurnkitError as err:  # a tiny simulation may have no readable campaign: the demo goes on
        out.campaign_note = str(err)
    done(STEPS[7], out)

    say("uplift")
    try:  # a tiny simulation may have too few campaigns or users to learn from: the demo goes on
        out.uplift = train_uplift(project, project.problem(UPLIFT_PROBLEM), params.seed,
                                  progress=lambda msg: say(f"uplift: {msg}"))
        out.target = run_target(project, UPLIFT_PROBLEM, contacts=top, channel="coupon")
    except ChurnkitError as err:
        out.uplift_note = str(err)
    done(STEPS[8], out)

    say("KPIs")
    out.kpis = kpis(project)
    say("alerts")
    out.alerts = check(project, out.kpis.tables, out.kpis.segments)
    say("weekly report")
    out.report = weekly(project)
    done(STEPS[9], out)
    return out
