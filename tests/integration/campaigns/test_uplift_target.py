"""Uplift problems and ``churnkit target`` on a simulated workspace: point-in-time rows, the
model registered and reloadable, judged on a held-out campaign, and a budgeted target list
that leaves out users a contact would put off."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from churnkit.campaigns.targeting import LIST_COLUMNS
from churnkit.campaigns.uplift_set import TREATMENT, uplift_rows
from churnkit.config import ChurnkitConfig, SimulateSettings
from churnkit.contracts import KEYS, LABEL
from churnkit.datasets.build import features_at_keys, frame_rows
from churnkit.datasets.span import fingerprint
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.flows.target import run_target
from churnkit.flows.uplift import randomised_controls
from churnkit.io import tracking
from churnkit.io.warehouse import workspace_assignments


@pytest.fixture(scope="module")
def workspace(simulated_workspace):
    # campaigns on days 35, 63, 91 and 119, every 28-day window inside the 150 days
    return simulated_workspace("uplift", SimulateSettings(users=1500, days=150, seed=5, horizons=[7],
                                                          campaign_every_days=28, observable=False))


@pytest.fixture(scope="module")
def rows(workspace):
    project = Project.at(workspace)
    con = project.connect()
    events, users = project.tables(con)
    assignments = workspace_assignments(con, workspace)
    problem = project.problem("uplift_28")
    controls = randomised_controls(project, assignments, None)
    df, manifest = uplift_rows(events, users, assignments, controls, problem, fingerprint(events))
    return project, events, users, problem, df, manifest


def test_rows_see_only_events_before_the_send_day(rows):
    """Features recomputed from the events strictly before each campaign's day are the same:
    nothing at or after the cutoff reached them; the label only counts the window after."""
    _project, events, users, problem, df, manifest = rows
    assert df.groupby(["campaign_id", "user_id"]).size().max() == 1 and df[TREATMENT].isin([0, 1]).all()
    assert (df["cutoff"] <= df["assigned_ts"]).all() and (df["assigned_ts"] - df["cutoff"] < pd.Timedelta("1D")).all()
    for cutoff, part in df.groupby("cutoff"):
        before = events.filter(events.ts < cutoff.to_pydatetime())
        ff = features_at_keys(before, users, problem, part[list(KEYS)], manifest.attribute_levels)
        again = part[list(KEYS)].merge(frame_rows(ff), on=list(KEYS), how="left")
        names = manifest.feature_names
        pd.testing.assert_frame_equal(part[names].reset_index(drop=True), again[names], check_dtype=False)
    # the label is any activity in [assigned_ts, +28 days), counted here in pandas
    ev = events.select("user_id", "ts", "event").execute()
    ev = ev[~ev["event"].isin(["push_sent", "refund"])]
    sample = df.sample(300, random_state=0)
    for r in sample.itertuples():
        mine = ev[(ev["user_id"] == r.user_id) & (ev["ts"] >= r.assigned_ts)
                  & (ev["ts"] < r.assigned_ts + pd.Timedelta(days=28))]
        assert getattr(r, LABEL) == float(len(mine) > 0)


def test_train_registers_a_model_judged_on_the_latest_campaign(workspace, churnkit, cli):
    run = churnkit("--workspace", str(workspace.root), "train", "--problem", "uplift_28")
    assert run.returncode == 0, run.stderr
    text = " ".join(run.stdout.split())
    assert "held out cmp04_coupon" in text and "Qini" in text and "registered churnkit-uplift_28 version 1" in text
    assert "against the true individual effects" in text  # a simulation: the truth judges it
    project = Project.at(workspace)
    project.open_tracking()
    loaded = tracking.load_model("uplift_28", alias="challenger")
    runs = list((workspace.root / "runs" / "uplift_28").glob("*/test_predictions.parquet"))
    test = pd.read_parquet(runs[0])
    assert set(test["campaign_id"]) == {"cmp04_coupon"}
    np.testing.assert_allclose(loaded.model.predict(test), test["uplift"])  # the registered model, reloaded
    assert loaded.metrics["qini_low"] <= loaded.metrics["qini"] <= loaded.metrics["qini_high"]
    promoted = cli("--workspace", str(workspace.root), "promote", "--problem", "uplift_28")
    assert promoted.returncode == 0, promoted.stderr
    assert "qini" in promoted.stdout and "champion is version 1" in " ".join(promoted.stdout.split())
    # the held-out campaign's report shows the model's Qini curve and budget curve
    from churnkit.flows.report import campaign as campaign_report

    html = campaign_report(project, "cmp04_coupon").read_text()
    assert 'id="uplift-uplift_28"' in html and "Budget curve" in html and "true incremental" in html.lower()
    assert html.count("data:image/png;base64") >= 4  # forest, timeline, Qini, budget


def test_target_list_under_a_budget(workspace, cli, tmp_path, monkeypatch):
    if not list((workspace.root / "runs" / "uplift_28").glob("*")):
        cli("--workspace", str(workspace.root), "train", "--problem", "uplift_28")
    no_value = cli("--workspace", str(workspace.root), "target", "--problem", "uplift_28", "--contacts", "20")
    assert no_value.returncode == 1 and no_value.stderr.strip().count("\n") == 0
    assert "targeting.value_per_success" in no_value.stderr

    config = ChurnkitConfig.model_validate({"targeting": {"value_per_success": 40.0}})
    project = Project.at(workspace, config)
    made = run_target(project, "uplift_28", contacts=40, channel="coupon")
    t = made.frame
    assert list(t.columns[: len(LIST_COLUMNS)]) == list(LIST_COLUMNS) and 0 < len(t) <= 40
    assert (t["uplift"] > 0).all() and (t["net_value"] > 0).all() and t["net_value"].is_monotonic_decreasing
    np.testing.assert_allclose(t["net_value"], t["uplift"] * 40.0 - 2.0)  # the coupon's default cost
    assert t["reason_1"].notna().mean() > 0.9
    s = made.summary
    assert s["candidates"] == s["negative_effect"] + s["not_worth_the_cost"] + s["worth_contacting"]
    assert made.path.exists() and made.path.suffix == ".csv"
    # money: no more spent than the budget, and the same order
    by_money = run_target(project, "uplift_28", money=25.0, channel="coupon", fmt="xlsx", out=tmp_path / "t.xlsx")
    assert by_money.summary["spend"] <= 25.0 and len(by_money.frame) == min(12, s["worth_contacting"])
    assert by_money.frame["user_id"].tolist() == t["user_id"].head(len(by_money.frame)).tolist()
    assert (tmp_path / "t.xlsx").stat().st_size > 0
    # pseudonymised: the same users under keyed pseudonyms, never the ids
    monkeypatch.setenv(project.config.scoring.pseudonym_key_env, "k" * 40)
    hidden = run_target(project, "uplift_28", contacts=40, channel="coupon", out=tmp_path / "p.csv", pseudonymise=True)
    written = pd.read_csv(tmp_path / "p.csv")
    assert len(written) == len(t) and not set(written.astype(str).stack()) & set(t["user_id"])
    assert hidden.frame["user_id"].tolist() == t["user_id"].tolist()


def test_target_errors_are_one_line(workspace, churnkit, cli):
    for i, (args, words) in enumerate( [(["--problem", "churn_ga4", "--contacts", "5"], "needs an uplift problem"),
                        (["--problem", "uplift_28"], "a budget needs"),
                        (["--problem", "uplift_revenue_28", "--contacts", "5"], "no registered model"),
                        (["--problem", "uplift_28", "--contacts", "5", "--channel", "pigeon"], "no contact cost")]):
        run = (churnkit if i == 0 else cli)("--workspace", str(workspace.root), "target", *args)  # one real process
        assert run.returncode == 1 and run.stderr.strip().count("\n") == 0, (args, run.stderr)
        assert words in run.stderr, (args, run.stderr)


def test_an_uplift_problem_needs_two_campaigns(rows):
    _project, _events, _users, problem, df, manifest = rows
    one = df[df["campaign_id"] == df["campaign_id"].iloc[0]]
    from churnkit.campaigns.uplift_fit import fit_uplift

    with pytest.raises(ChurnkitError, match="at least 2 randomised campaigns"):
        fit_uplift(one, manifest.feature_names, problem)
    assert dt.date.fromisoformat(manifest.cutoffs[0]) < dt.date.fromisoformat(manifest.cutoffs[-1])
