"""Scoring end to end on a small simulated workspace with real champions in a real MLflow store.

Batch scores must equal the in-memory single-user path (one feature function), lists come
out ranked with reasons, and each failure is one line that says what to do.
"""

from __future__ import annotations

import datetime as dt
import json
import types

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from churnkit.cli import app
from churnkit.config import ChurnkitConfig, ScoringSettings
from churnkit.contracts import in_population_column, model_version_column
from churnkit.datasets.manifest import FeatureEntry
from churnkit.datasets.span import data_span
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.flows.score import load_scorer, score, stored_fit
from churnkit.io import tracking
from churnkit.io.warehouse import (
    duckdb_connection,
    events_memtable,
    users_memtable,
    workspace_events,
    workspace_users,
)
from churnkit.io.workspace import Workspace
from churnkit.scoring.lists import recall_list, risk_list
from churnkit.scoring.scorer import RoleModel, Scorer, check_role_model
from churnkit.scoring.stages import StageCuts
from churnkit.scoring.summary import score_summary
from churnkit.service.state import Holder, ServiceSettings

runner = CliRunner()


@pytest.fixture(scope="module")
def workspace(trained_workspace) -> Workspace:
    return trained_workspace.ws


@pytest.fixture(scope="module")
def tables(workspace):
    con = duckdb_connection()
    return workspace_events(con, workspace), workspace_users(con, workspace)


@pytest.fixture(scope="module")
def scorer(workspace) -> Scorer:
    return load_scorer(Project.at(workspace))


@pytest.fixture(scope="module")
def batch(scorer, tables):
    events, users = tables
    end = data_span(events).end
    return end, scorer.score_as_of(events, users, end)


def test_scorer_pins_the_champions(scorer):
    assert scorer.versions == {
        "churn": {"problem": "churn_ga4", "version": 1},
        "purchase": {"problem": "purchase_ga4", "version": 1},
        "ltv": {"problem": "revenue_ga4", "version": 1},
    }
    assert len(scorer.groups) == 1  # the GA4 problems share one feature definition: one pass


def test_batch_scores_cover_everyone_with_history_and_flag_populations(batch, workspace):
    end, df = batch
    expected = [
        "user_id", "as_of", "churn_probability", "purchase_probability", "predicted_ltv", "ltv_low", "ltv_high",
        "value_at_risk", "rfm_tier", "lifecycle_stage", "reason_1", "reason_2", "reason_3",
        "churn_model_version", "purchase_model_version", "ltv_model_version",
    ]
    assert set(expected) <= set(df.columns)
    assert df["user_id"].is_unique and (df["as_of"] == end).all()
    np.testing.assert_allclose(df["value_at_risk"], df["churn_probability"] * df["predicted_ltv"])
    assert (df["ltv_low"] <= df["ltv_high"]).all()
    assert {"churned", "silent", "active"} <= set(df["lifecycle_stage"])
    # the churn population (7-day look-back) is inside the 28-day one
    assert (df["churn_in_population"] <= df["purchase_in_population"]).all()
    assert 0 < df["churn_in_population"].sum() < df["purchase_in_population"].sum() < len(df)
    assert (df.loc[df.lifecycle_stage == "churned", "churn_in_population"] == False).all()
    # reasons only where the churn model applies (default scope)
    outside = df[~df["churn_in_population"]]
    assert outside["reason_1"].isna().all()  # null when there is no reason, never ""
    assert df.loc[df["churn_in_population"], "reason_1"].notna().mean() > 0.9
    reasons = df[["reason_1", "reason_2", "reason_3"]]
    assert not (reasons == "").any().any()


def test_single_user_in_memory_equals_batch(scorer, batch, workspace):
    end, df = batch
    events = pd.read_parquet(workspace.simulation_dir / "events.parquet")
    users = pd.read_parquet(workspace.users_path)
    picks = [df[df.churn_in_population].user_id.iloc[0], df[df.lifecycle_stage == "silent"].user_id.iloc[0],
             df[df.lifecycle_stage == "churned"].user_id.iloc[0]]
    for uid in picks:
        one = scorer.score_events(events_memtable(events[events.user_id == uid]),
                                  users_memtable(users[users.user_id == uid]), end)
        row = df[df.user_id == uid].reset_index(drop=True)
        pd.testing.assert_frame_equal(one, row, check_dtype=False, rtol=1e-12)


def test_risk_list_sorted_with_reasons(batch):
    _, df = batch
    top = risk_list(df, top=50)
    assert len(top) == 50 and top["value_at_risk"].is_monotonic_decreasing
    assert top["reason_1"].notna().all()
    assert top["value_at_risk"].iloc[0] == df.loc[df.churn_in_population, "value_at_risk"].max()


def test_explain_gives_reasons_both_ways(scorer, tables, batch):
    events, users = tables
    end, df = batch
    frames = scorer.features(events, users, end)
    uid = df[df.churn_in_population].user_id.iloc[0]
    one = {r: f[f.user_id == uid] for r, f in frames.items()}
    ex = scorer.explain(one, top=2)
    assert set(ex["score"]) == {"churn", "purchase", "ltv"}
    up = ex[ex.direction == "up"]
    assert (up["contribution"] > 0).all() and (ex[ex.direction == "down"]["contribution"] < 0).all()


def test_as_of_outside_the_data_is_a_clear_error(scorer, tables):
    events, users = tables
    span = data_span(events)
    first, end = span.first, span.end
    with pytest.raises(ChurnkitError, match=f"before the data: the first events are on {first}"):
        scorer.score_as_of(events, users, first)
    with pytest.raises(ChurnkitError, match=f"after the data end.*score at {end} at the latest"):
        scorer.score_as_of(events, users, end + dt.timedelta(days=1))


def test_manifest_and_model_disagreement_names_the_problem(scorer, tables):
    events, users = tables
    churn = scorer.models["churn"]
    bad = churn.manifest.model_copy(update={"features": (*churn.manifest.features, FeatureEntry(name="bogus", unit="x"))})
    with pytest.raises(ChurnkitError, match="churn model churnkit-churn_ga4 v1: the feature manifest and the model"):
        check_role_model(RoleModel("churn", "churn_ga4", 1, churn.model, bad))
    # a model that does not list its features: features_as_of finds the disagreement
    loose = RoleModel("churn", "churn_ga4", 1, types.SimpleNamespace(), bad)
    s = Scorer({**scorer.models, "churn": loose}, scorer.settings)
    assert len(s.groups) == 2
    with pytest.raises(ChurnkitError, match=r"churn model churnkit-churn_ga4: features differ from the manifest.*bogus"):
        s.score_as_of(events, users, data_span(events).end)


def test_wrong_kind_for_a_role_is_a_config_error(workspace):
    with pytest.raises(ChurnkitError, match="predicts 'purchase', not 'churn'.*scoring.churn"):
        load_scorer(Project.at(workspace, ChurnkitConfig(scoring=ScoringSettings(churn="purchase_ga4"))))


def test_no_champion_says_run_promote(workspace, scorer):
    tracking.open_store(workspace.root)
    client = tracking.client()
    client.delete_registered_model_alias("churnkit-purchase_ga4", "champion")
    try:
        with pytest.raises(ChurnkitError, match="no champion for purchase_ga4; run churnkit promote") as err:
            load_scorer(Project.at(workspace))
        assert str(err.value).startswith("scoring.purchase = purchase_ga4: ")
    finally:
        client.set_registered_model_alias("churnkit-purchase_ga4", "champion", "1")


def test_cli_score_and_lists(workspace, monkeypatch):
    from openpyxl import load_workbook

    w = ["--workspace", str(workspace.root)]
    res = runner.invoke(app, [*w, "score"])
    assert res.exit_code == 0, res.output
    assert "scored" in res.output and "total value at risk" in res.output
    scores_dir = workspace.root / "scores"
    path = next(scores_dir.glob("scores_*.parquet"))
    meta = json.loads(path.with_suffix(".json").read_text())
    assert meta["versions"]["churn"] == {"problem": "churn_ga4", "version": 1}
    assert len(meta["rfm"]["thresholds"]["recency"]) == 4
    run = tracking.get_run(meta["mlflow_run_id"])
    assert run.data.metrics["users"] == meta["summary"]["users"] == len(pd.read_parquet(path))
    date = meta["as_of"]

    res = runner.invoke(app, [*w, "risk-list", "--as-of", date, "--top", "25", "--format", "xlsx"])
    assert res.exit_code == 0, res.output
    assert "25 users" in res.output and "by stage" in res.output
    ws = load_workbook(workspace.root / "lists" / f"risk_{date}.xlsx").active
    assert ws.freeze_panes == "A2" and ws[1][0].font.bold and ws.max_row == 26

    out = workspace.root / "recall.parquet"
    res = runner.invoke(app, [*w, "recall-list", "--as-of", date, "--top", "10", "--out", str(out)])
    assert res.exit_code == 0, res.output
    rec = pd.read_parquet(out)
    assert len(rec) == 10 and set(rec["lifecycle_stage"]) <= {"silent", "churned"}

    monkeypatch.delenv("CHURNKIT_PSEUDONYM_KEY", raising=False)
    res = runner.invoke(app, [*w, "risk-list", "--as-of", date, "--pseudonymise"])
    assert res.exit_code == 1 and "CHURNKIT_PSEUDONYM_KEY" in res.output
    monkeypatch.setenv("CHURNKIT_PSEUDONYM_KEY", "k" * 31)  # too short to be a secret
    res = runner.invoke(app, [*w, "risk-list", "--as-of", date, "--pseudonymise"])
    assert res.exit_code == 1 and "has 31 characters; a pseudonym key needs at least 32" in res.output
    assert len(res.output.strip().splitlines()) == 1
    monkeypatch.setenv("CHURNKIT_PSEUDONYM_KEY", "0123456789abcdef" * 2)
    csv = workspace.root / "p.csv"
    res = runner.invoke(app, [*w, "risk-list", "--as-of", date, "--top", "5", "--pseudonymise", "--out", str(csv)])
    assert res.exit_code == 0, res.output
    assert "user_id" not in pd.read_csv(csv).columns

    res = runner.invoke(app, [*w, "risk-list", "--as-of", "2020-01-01"])
    assert res.exit_code == 1 and "before the data" in res.output


def test_service_loads_champions_from_its_tracking_uri(workspace, tmp_path):
    """CHURNKIT_TRACKING_URI (ServiceSettings.tracking_uri) is where the service's models come
    from: with the workspace store's purchase champion gone, only a copy made before can
    serve all three roles."""
    import shutil

    copy = tmp_path / "elsewhere.db"
    shutil.copyfile(workspace.root / "mlflow.db", copy)
    client = tracking.open_store(workspace.root)
    client.delete_registered_model_alias("churnkit-purchase_ga4", "champion")
    try:
        with pytest.raises(ChurnkitError, match="no champion for purchase_ga4"):
            Holder(ServiceSettings(workspace=workspace.root)).load()
        loaded = Holder(ServiceSettings(workspace=workspace.root, tracking_uri=f"sqlite:///{copy}")).load()
        assert loaded.scorer.versions["purchase"] == {"problem": "purchase_ga4", "version": 1}
        assert loaded.tracking_uri.endswith("elsewhere.db")
    finally:
        client = tracking.open_store(workspace.root)
        client.set_registered_model_alias("churnkit-purchase_ga4", "champion", "1")


def test_one_user_with_overflowing_amounts_never_blocks_the_batch(scorer, batch, workspace):
    """Amounts that sum to infinity (possible from a table that bypassed ingest's limit) make
    that user's revenue features unknown, not the whole batch fail."""
    end, df = batch
    events = pd.read_parquet(workspace.simulation_dir / "events.parquet")
    users = pd.read_parquet(workspace.users_path)
    picks = list(df[df.churn_in_population].user_id.iloc[:3])
    mine = events[events.user_id.isin(picks)]
    huge = mine[mine.user_id == picks[0]].head(2).assign(event="purchase", amount=1e308)
    out = scorer.score_events(events_memtable(pd.concat([mine, huge])), users_memtable(users[users.user_id.isin(picks)]),
                              end)
    assert list(out.user_id) == sorted(picks)
    assert out["churn_probability"].between(0, 1).all() and np.isfinite(out["predicted_ltv"]).all()
    rest = out[out.user_id != picks[0]].reset_index(drop=True)
    want = df[df.user_id.isin(picks[1:])].reset_index(drop=True)
    pd.testing.assert_frame_equal(rest, want, check_dtype=False, rtol=1e-12)


# --------------------------------------------------------------------------- roles, stages, outcomes


@pytest.fixture(scope="module")
def frames(scorer, tables, batch):
    events, users = tables
    return scorer.features(events, users, batch[0])


@pytest.mark.parametrize(
    ("roles", "absent"),
    [
        (("churn",), ["purchase_probability", "predicted_ltv", "ltv_low", "value_at_risk", "ltv_in_population"]),
        (("ltv",), ["churn_probability", "value_at_risk", "reason_1", "churn_model_version"]),
        (("purchase", "ltv"), ["churn_probability", "value_at_risk", "reason_1", "churn_in_population"]),
        (("churn", "ltv"), ["purchase_probability", "purchase_model_version"]),
    ],
)
def test_any_subset_of_roles_scores_with_absent_columns(scorer, frames, batch, roles, absent):
    # the full scorer on the same feature rows: two feature builds may differ in the last bit
    # of a float sum (DuckDB adds in parallel), which is not what this test is about
    full = scorer.score_features(frames, as_of=batch[0])
    sub = Scorer({r: scorer.models[r] for r in roles}, scorer.settings, scorer.segmenter, scorer.stages,
                 scorer.reason_basis)
    df = sub.score_features(frames, as_of=batch[0])
    assert not set(absent) & set(df.columns)
    assert {"user_id", "lifecycle_stage", "rfm_tier", *(model_version_column(r) for r in roles)} <= set(df.columns)
    shared = [c for c in df.columns if c in full.columns]
    pd.testing.assert_frame_equal(df[shared], full[shared], check_dtype=False, rtol=1e-12)  # same numbers
    summary = score_summary(df)
    assert set(summary) >= {in_population_column(r) for r in roles}
    assert ("value_at_risk" in summary) == ({"churn", "ltv"} <= set(roles)) == ("value_at_risk" in df)
    assert list(sub.explain(frames, top=1)["score"].unique()) == list(roles)
    if "churn" in roles:  # ranked by value at risk, or by churn probability without an LTV model
        ranking = "value_at_risk" if "ltv" in roles else "churn_probability"
        assert risk_list(df, top=5)[ranking].is_monotonic_decreasing
    else:
        with pytest.raises(ChurnkitError, match="needs|no churn_probability: set scoring.churn"):
            risk_list(df)
    if "purchase" in roles or "ltv" in roles:
        ranked = recall_list(df, top=5)
        assert len(ranked) == 5 and ranked.columns[2] in ("recall_value", "predicted_ltv")


def test_a_role_left_out_or_without_champion_names_the_setting(workspace):
    config = ChurnkitConfig(scoring=ScoringSettings(purchase=None))
    assert load_scorer(Project.at(workspace, config)).roles == ("churn", "ltv")
    with pytest.raises(ChurnkitError) as err:
        load_scorer(Project.at(workspace, ChurnkitConfig(scoring=ScoringSettings(purchase="purchase_30"))))
    text = str(err.value)
    assert text.startswith("scoring.purchase = purchase_30: no registered model churnkit-purchase_30")
    assert "set scoring.purchase in the project config" in text and "ga4" not in text.lower()


def test_realised_churn_by_stage_once_outcomes_exist(workspace, scorer, tmp_path):
    project = Project.at(workspace)
    end = data_span(project.tables()[0]).end
    as_of = end - dt.timedelta(days=21)
    out = score(project, as_of, out=tmp_path / "past.parquet", log_run=False)
    realised = out.meta["summary"]["realised_churn"]
    assert realised["horizon_days"] == 7 and realised["users"] == len(out.scores)
    by = realised["by_stage"]
    assert sum(v["users"] for v in by.values()) == len(out.scores)
    assert by["churned"]["rate"] > 0.7 and by["active"]["rate"] < 0.3  # stages mean what they say
    # the label definition training uses: no activity in [as_of, as_of + 7 days)
    events = pd.read_parquet(workspace.simulation_dir / "events.parquet")
    cut = pd.Timestamp(as_of, tz="UTC")
    window = events[(events.ts >= cut) & (events.ts < cut + pd.Timedelta(days=7)) & (events.event != "push_sent")]
    churned = ~out.scores["user_id"].isin(set(window.user_id))
    assert realised["rate"] == pytest.approx(churned.mean())
    assert out.meta["stages"]["basis"] == "rhythm" and out.meta["stages"]["churned_days"] >= 7
    at_end = score(project, end, out=tmp_path / "end.parquet", log_run=False)
    assert "realised_churn" not in at_end.meta["summary"]  # the outcome window is not complete yet


def test_a_scorer_from_the_stored_run_stages_and_explains_like_the_batch(workspace, tmp_path):
    project = Project.at(workspace)
    out = score(project, None, out=tmp_path / "s.parquet", log_run=False)
    fresh = load_scorer(project, **stored_fit(out.path))
    assert fresh.stages == StageCuts.from_dict(out.meta["stages"])
    assert fresh.reason_basis.to_dict() == out.meta["reasons"]
    events = pd.read_parquet(workspace.simulation_dir / "events.parquet")
    users = pd.read_parquet(workspace.users_path)
    uid = out.scores[out.scores.churn_in_population].user_id.iloc[3]
    one = fresh.score_events(events_memtable(events[events.user_id == uid]),
                             users_memtable(users[users.user_id == uid]), out.scores.as_of.iloc[0])
    want = out.scores[out.scores.user_id == uid].reset_index(drop=True)
    pd.testing.assert_frame_equal(one, want, check_dtype=False, rtol=1e-12)


def test_reasons_for_top_explains_the_first_rows_and_lists_explain_the_rest(workspace, batch):
    """``reasons_for: top`` gives reasons to the risk ranking's first users only, with the
    texts a full run gives them; a list that shows more rows explains those on the spot,
    identically (the one model version and the run's stored medians)."""
    from churnkit.flows.lists import make_list

    end, full = batch  # the population explained (it is smaller than the default reasons_top)
    cols = ["reason_1", "reason_2", "reason_3"]
    project = Project.at(workspace, ChurnkitConfig(scoring=ScoringSettings(reasons_top=5)))
    made = score(project, end, log_run=False)
    explained = made.scores[made.scores[cols].notna().any(axis=1)]
    first = risk_list(full, top=5)
    assert set(explained["user_id"]) == set(first["user_id"])
    want = full.set_index("user_id").loc[explained["user_id"], cols]
    pd.testing.assert_frame_equal(explained.set_index("user_id")[cols], want)
    for col in full.columns.difference(cols):  # everything but the reasons is the full run's
        pd.testing.assert_series_equal(made.scores[col], full[col], check_dtype=False)

    listed = make_list(project, "risk", lambda s: risk_list(s, top=40), as_of=end, fmt="parquet",
                       out=workspace.root / "risk_top.parquet")
    want = risk_list(full, top=40)
    assert listed.frame["reason_1"].notna().sum() > 30  # rows past the 5th were explained now
    pd.testing.assert_frame_equal(listed.frame[cols].reset_index(drop=True), want[cols].reset_index(drop=True))
    pd.testing.assert_series_equal(listed.frame["user_id"], want["user_id"])
