"""CUPAC with a real churn champion: every assigned user scored as of their assignment day,
one covariate per metric, a variance cut for ``retained`` at least CUPED's, the effect's
interval still covering the raw estimate's target; without a champion, CUPED with a note."""

from __future__ import annotations

import pytest

from churnkit.config import ChurnkitConfig, SimulateSettings
from churnkit.flows.campaigns import evaluate
from churnkit.flows.project import Project
from churnkit.flows.promote import promote_problem
from churnkit.flows.train import train
from churnkit.training.fit import TrainOptions

CHURN_ONLY = {"scoring": {"churn": "churn_ga4", "purchase": None, "ltv": None}}


@pytest.fixture(scope="module")
def ws(simulated_workspace):
    ws = simulated_workspace("cupac", SimulateSettings(users=1500, days=120, seed=8, horizons=[7],
                                                        cutoff_step_days=7, campaign_every_days=28))
    project = Project.at(ws, ChurnkitConfig.model_validate(CHURN_ONLY))
    return ws, project


@pytest.mark.slow
def test_cupac_cuts_at_least_as_much_variance_as_cuped_and_stays_valid(ws):
    ws, project = ws
    before = evaluate(project)[0]
    assert any("no churn score at assignment" in n for n in before.meta["notes"])
    train(project, "churn_ga4", TrainOptions(trials=1, seed=3, bgnbd=False))
    promote_problem(project, "churn_ga4")
    results = evaluate(project)
    done = [r for r in results if r.meta["complete"]]
    assert done
    for r in done:
        cut = r.meta["variance_reduction"]["retained"]
        assert cut["cupac"] >= cut["cuped"] - 1e-9
        row = r.table.set_index("metric").loc["retained"]
        assert row["covariate"] == "cupac_retained" and any("CUPAC" in n for n in r.meta["notes"])
        raw = r.rows.groupby("variant")["retained"].mean()
        assert abs(row["effect"] - (raw["treatment"] - raw["control"])) < 4 * row["se"] / (1 - cut["cupac"]) ** 0.5
        assert row["ci_low"] <= row["effect"] <= row["ci_high"]
