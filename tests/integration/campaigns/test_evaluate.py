"""``churnkit campaign evaluate`` on a simulated workspace: the tidy table per campaign,
the estimate near the simulator's true effect, an open window read with always-valid
intervals, and one-line errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.config import ChurnkitConfig, SimulateSettings
from churnkit.flows.campaigns import evaluate
from churnkit.flows.project import Project

REQUIRED = ["campaign_id", "metric", "variant", "n", "mean", "control_mean", "effect", "ci_low", "ci_high",
            "p_value", "srm_p_value"]


@pytest.fixture(scope="module")
def workspace(simulated_workspace):
    # campaigns on days 35, 63, 91 and 119: the last one's 28-day window is still open at day 130
    return simulated_workspace("campaigns", SimulateSettings(users=2500, days=130, seed=21, horizons=[7],
                                                             campaign_every_days=28, observable=False))


def test_every_campaign_gets_a_tidy_table_near_the_truth(workspace):
    results = evaluate(Project.at(workspace))
    assert [r.campaign_id for r in results] == sorted(r.campaign_id for r in results) and len(results) == 4
    truth = pd.read_parquet(workspace.simulation_dir / "assignments.parquet")
    for r in results:
        t = pd.read_parquet(r.path)
        assert set(REQUIRED) <= set(t.columns) and {"retained", "converted"} <= set(t["metric"])
        assert (t["variant"] == "treatment").all() and (t["control"] == "control").all()
        assert t.groupby("metric").size().max() == 1  # one row per metric x non-control variant
        mine = truth[truth["campaign_id"] == r.campaign_id]
        assert t["n"].iloc[0] + t["control_n"].iloc[0] == len(mine)
        row = t[t["metric"] == "retained"].iloc[0]
        true = -mine["effect_churn"].mean()
        if r.meta["complete"]:
            assert row["interval"] == "fixed"
            assert abs(row["effect"] - true) < 4 * row["se"]  # fails by chance once in 16,000
            assert row["ci_low"] <= row["effect"] <= row["ci_high"] and 0 < row["srm_p_value"] <= 1
        else:
            assert row["interval"] == "always-valid" and any("always-valid" in n for n in r.meta["notes"])
            fixed = 2 * 1.959964 * row["se"]
            assert row["ci_high"] - row["ci_low"] > fixed  # wider than a fixed interval: safe to peek
    assert sum(not r.meta["complete"] for r in results) == 1


def test_control_must_be_declared_and_ids_must_exist(workspace, churnkit, cli):
    bad = churnkit("--workspace", str(workspace.root), "campaign", "evaluate", "nope")
    assert bad.returncode == 1 and bad.stderr.strip().count("\n") == 0 and "no campaign 'nope'" in bad.stderr
    ids = [r.campaign_id for r in evaluate(Project.at(workspace))]
    config = ChurnkitConfig.model_validate({"campaigns": {"control": {ids[0]: "holdout"}}})
    with pytest.raises(Exception, match="control arm .holdout.*has no users"):
        evaluate(Project.at(workspace, config), ids[:1])
    run = cli("--workspace", str(workspace.root), "campaign", "evaluate", ids[0])
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())
    assert f"campaign {ids[0]}" in text and "control control" in text and "retained" in text and "SRM p" in text
    assert np.isfinite(pd.read_parquet(workspace.campaign_results_path(ids[0]))["effect"]).all()
