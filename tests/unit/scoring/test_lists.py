"""Risk and recall lists from a hand-made scores frame: order, filters, formats, pseudonyms."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.errors import ChurnkitError
from churnkit.flows.lists import pseudonym_key
from churnkit.io.artifacts import list_format, write_list
from churnkit.scoring.lists import (
    list_summary,
    pseudonymise,
    recall_list,
    risk_list,
    with_pseudonyms,
)


@pytest.fixture
def scores() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 40
    stages = np.array(["active", "new", "recalled", "silent", "churned"])[np.arange(n) % 5]
    churn_in = np.isin(stages, ["active", "new", "recalled"])
    p = rng.uniform(0.01, 0.9, n)
    ltv = rng.gamma(2.0, 20.0, n)
    return pd.DataFrame({
        "user_id": [f"u{i:03d}" for i in range(n)],
        "as_of": pd.Timestamp("2024-05-20").date(),
        "churn_probability": p,
        "purchase_probability": rng.uniform(0.0, 0.5, n),
        "predicted_ltv": ltv,
        "ltv_low": ltv * 0.2,
        "ltv_high": ltv * 2.0,
        "value_at_risk": p * ltv,
        "rfm_tier": np.array(["champions", "at risk", "no purchases yet", "lost"])[np.arange(n) % 4],
        "lifecycle_stage": stages,
        "days_since_last_activity": rng.uniform(0, 60, n),
        "revenue_total": rng.uniform(0, 500, n),
        "reason_1": "no activity for 5 days (most users: 1)",
        "reason_2": "",
        "reason_3": "",
        "churn_in_population": churn_in,
        "purchase_in_population": ~np.isin(stages, ["churned"]),
        "ltv_in_population": ~np.isin(stages, ["churned"]),
        "churn_model_version": 3,
        "purchase_model_version": 2,
        "ltv_model_version": 1,
    })


def test_risk_list_is_churn_population_sorted_by_value_at_risk(scores):
    df = risk_list(scores)
    assert len(df) == scores["churn_in_population"].sum()
    assert df["value_at_risk"].is_monotonic_decreasing
    assert list(df["rank"]) == list(range(1, len(df) + 1))
    assert set(df["lifecycle_stage"]) <= {"active", "new", "recalled"}
    assert {"user_id", "churn_probability", "predicted_ltv", "rfm_tier", "reason_1", "churn_model_version"} <= set(df)


def test_risk_list_filters(scores):
    assert len(risk_list(scores, top=5)) == 5
    v = risk_list(scores, min_value=10.0)
    assert (v["value_at_risk"] >= 10.0).all() and len(v) == ((scores.value_at_risk >= 10) & scores.churn_in_population).sum()
    assert set(risk_list(scores, stage="new")["lifecycle_stage"]) == {"new"}
    tiers = risk_list(scores, tier=["at_risk", "Champions"])
    assert set(tiers["rfm_tier"]) <= {"at risk", "champions"}
    assert len(tiers) == (scores.rfm_tier.isin(["at risk", "champions"]) & scores.churn_in_population).sum() > 0
    likely = risk_list(scores, min_probability=0.5)
    assert (likely["churn_probability"] >= 0.5).all()
    assert len(likely) == ((scores.churn_probability >= 0.5) & scores.churn_in_population).sum() > 0
    assert len(risk_list(scores, stage="churned")) == 0  # churned users are not in the churn population


def test_recall_list_is_silent_and_churned_by_expected_value(scores):
    df = recall_list(scores)
    assert set(df["lifecycle_stage"]) == {"silent", "churned"}
    np.testing.assert_allclose(df["recall_value"], df["purchase_probability"] * df["predicted_ltv"])
    assert df["recall_value"].is_monotonic_decreasing
    assert len(recall_list(scores, top=3)) == 3
    assert "ltv_in_population" in df  # out-of-population scores stay visible


def test_summary_totals_by_stage_and_tier(scores):
    df = risk_list(scores)
    s = list_summary(df, "value_at_risk")
    assert s["users"] == len(df)
    assert s["total"] == pytest.approx(df["value_at_risk"].sum())
    assert sum(v["users"] for v in s["by_lifecycle_stage"].values()) == len(df)
    assert sum(v["total"] for v in s["by_rfm_tier"].values()) == pytest.approx(s["total"])


def test_pseudonyms_are_stable_per_key_and_differ_across_keys(scores):
    a1, a2 = pseudonymise(["u1", "u2"], b"key-a"), pseudonymise(["u1", "u2"], b"key-a")
    b = pseudonymise(["u1", "u2"], b"key-b")
    assert a1 == a2 and a1[0] != a1[1]
    assert set(a1).isdisjoint(b)
    assert all(len(x) == 32 and int(x, 16) >= 0 for x in a1)
    out = with_pseudonyms(risk_list(scores), b"key-a")
    assert "user_id" not in out and not out["user_pseudonym"].str.startswith("u").all()


def test_pseudonym_key_from_env(monkeypatch):
    monkeypatch.delenv("CK_TEST_KEY", raising=False)
    with pytest.raises(ChurnkitError, match="CK_TEST_KEY"):
        pseudonym_key("CK_TEST_KEY")
    monkeypatch.setenv("CK_TEST_KEY", "s3cret")
    with pytest.raises(ChurnkitError, match="has 6 characters; a pseudonym key needs at least 32"):
        pseudonym_key("CK_TEST_KEY")
    monkeypatch.setenv("CK_TEST_KEY", "s3cret" * 6)
    assert pseudonym_key("CK_TEST_KEY") == b"s3cret" * 6


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "parquet"])
def test_writes_every_format(scores, tmp_path, fmt):
    df = risk_list(scores, top=10)
    path = write_list(df, tmp_path / f"risk.{fmt}", fmt)
    if fmt == "csv":
        back = pd.read_csv(path)
    elif fmt == "parquet":
        back = pd.read_parquet(path)
    else:
        back = pd.read_excel(path)
    assert list(back.columns) == list(df.columns)
    assert list(back["user_id"]) == list(df["user_id"])
    np.testing.assert_allclose(back["value_at_risk"], df["value_at_risk"], rtol=1e-5)
    assert [p.name for p in tmp_path.iterdir()] == [f"risk.{fmt}"]  # no staging leftovers


def test_xlsx_header_is_bold_coloured_and_frozen(scores, tmp_path):
    from openpyxl import load_workbook

    path = write_list(risk_list(scores, top=5), tmp_path / "risk.xlsx", "xlsx")
    ws = load_workbook(path).active
    assert ws.freeze_panes == "A2"
    header = list(ws[1])
    assert [c.value for c in header][:3] == ["rank", "user_id", "value_at_risk"]
    assert all(c.font.bold for c in header)
    assert all(c.fill.fill_type == "solid" and c.fill.start_color.rgb.endswith("1F4E78") for c in header)
    assert ws.max_row == 6


def test_list_format_choice():
    assert list_format(None, None) == "csv"
    assert list_format(None, "x/risk.xlsx") == "xlsx"
    assert list_format("PARQUET", "x/risk.csv") == "parquet"
    with pytest.raises(ChurnkitError, match="unknown list format 'json'"):
        list_format("json", None)
