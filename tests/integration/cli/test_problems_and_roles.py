"""A problem YAML given by path, then found by its name; scoring with only the roles a
project configures. Real CLI processes on a small simulated workspace, real MLflow store."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from churnkit.cli import app
from churnkit.config import SimulateSettings

pytestmark = pytest.mark.slow
runner = CliRunner()

PROBLEM = """name: weekly_churn
kind: churn
lookback_days: 7
horizon_days: 7
cutoffs: {step_days: 7, count: 6}
"""


@pytest.fixture(scope="module")
def trained(simulated_workspace, tmp_path_factory, churnkit) -> dict[str, Path]:
    params = SimulateSettings(users=400, days=100, seed=5, horizons=[7], cutoff_step_days=7, observable=False)
    ws = simulated_workspace("bypath", params).root
    yaml_dir = tmp_path_factory.mktemp("elsewhere")
    problem = yaml_dir / "weekly.yaml"  # a file named otherwise than its problem, outside any configs/
    problem.write_text(PROBLEM)
    proc = churnkit("--workspace", str(ws), "train", "--problem", str(problem), "--trials", "1", "--no-bgnbd",
                    cwd=yaml_dir)
    assert proc.returncode == 0, proc.stderr
    assert "registered churnkit-weekly_churn version 1" in proc.stdout
    return {"ws": ws, "problem": problem, "cwd": tmp_path_factory.mktemp("another_cwd")}


def test_a_problem_trained_from_a_path_is_found_by_name_elsewhere(trained, churnkit):
    ws, cwd = str(trained["ws"]), trained["cwd"]
    assert (trained["ws"] / "problems" / "weekly_churn.yaml").read_text() == PROBLEM  # recorded by name
    proc = churnkit("--workspace", ws, "promote", "--problem", "weekly_churn", cwd=cwd)  # no configs/ here
    assert proc.returncode == 0, proc.stderr
    assert "churnkit-weekly_churn: champion is version 1" in proc.stdout
    res = runner.invoke(app, ["--workspace", ws, "promote", "--problem", str(trained["problem"])])
    assert res.exit_code == 0, res.output
    assert "churnkit-weekly_churn: champion is version 1" in res.output  # the name, not a mangled path
    res = runner.invoke(app, ["--workspace", ws, "build", "--problem", "weekly_churn"])
    assert res.exit_code == 0, res.output
    assert (trained["ws"] / "datasets" / "weekly_churn.parquet").exists()
    res = runner.invoke(app, ["--workspace", ws, "promote", "--problem", "nightly_churn"])
    assert res.exit_code == 1 and "unknown problem 'nightly_churn'" in res.output and "YAML's path" in res.output


def test_scoring_with_churn_only_by_path(trained, tmp_path):
    ws = str(trained["ws"])
    config = tmp_path / "churn_only.yaml"
    config.write_text(f"scoring:\n  churn: {trained['problem']}\n  purchase: null\n  ltv: null\n")
    res = runner.invoke(app, ["--config", str(config), "--workspace", ws, "score"])
    assert res.exit_code == 0, res.output
    assert "churn weekly_churn v1" in res.output and "value at risk" not in res.output
    path = next((trained["ws"] / "scores").glob("scores_*.parquet"))
    scores = pd.read_parquet(path)
    assert {"churn_probability", "reason_1", "lifecycle_stage", "churn_model_version"} <= set(scores.columns)
    assert not {"purchase_probability", "predicted_ltv", "ltv_low", "value_at_risk",
                "purchase_in_population", "ltv_model_version"} & set(scores.columns)
    meta = json.loads(path.with_suffix(".json").read_text())
    assert set(meta["versions"]) == {"churn"} and meta["stages"]["basis"] == "rhythm" and meta["reasons"]["rows"] > 0

    res = runner.invoke(app, ["--config", str(config), "--workspace", ws, "risk-list", "--top", "10"])
    assert res.exit_code == 0, res.output
    assert "total churn probability" in res.output  # no LTV: ranked by churn probability
    res = runner.invoke(app, ["--config", str(config), "--workspace", ws, "recall-list"])
    assert res.exit_code == 1 and "scoring.purchase or scoring.ltv" in res.output
    assert len(res.output.strip().splitlines()) == 1

    defaults = tmp_path / "defaults.yaml"  # scoring: left out, so the GA4 presets nobody trained here
    defaults.write_text("seed: 1\n")
    res = runner.invoke(app, ["--config", str(defaults), "--workspace", ws, "score"])
    assert res.exit_code == 1, res.output
    line = " ".join(res.output.split())
    assert line.startswith("error: scoring.churn = churn_ga4 (the default): no registered model churnkit-churn_ga4")
    assert "set scoring.churn in the project config" in line and "null to score without churn" in line
