"""Reason codes: exact texts for hand-made rows, sign and order, grouping, SHAP parity, speed."""

from __future__ import annotations

import json
import time

import numpy as np
import pandas as pd
import pytest

from churnkit.config import ActivityEvents
from churnkit.datasets.profile import population_profile
from churnkit.errors import ChurnkitError
from churnkit.models.lgbm import shap_contributions
from churnkit.scoring.explain import Explainer, Reason, reason_codes, reasons_frame

FEATURES = [
    ("days_since_last_activity", "days since the last activity", "days"),
    ("days_since_last_purchase", "days since the last purchase", "days"),
    ("purchases_total", "purchases, all history", "purchases"),
    ("avg_order_value", "mean purchase amount, all history", "currency"),
    ("clv_frequency", "repeat purchase days (x): purchase days after the first", "days"),
    ("clv_recency_days", "first to last purchase day (t_x)", "days"),
    ("n_session_7d", "sessions in the last 7 days", "sessions"),
    ("n_session_30d", "sessions in the last 30 days", "sessions"),
    ("n_push_open_30d", "push opens in the last 30 days", "push opens"),
    ("n_support_ticket_30d", "support tickets in the last 30 days", "support tickets"),
    ("session_rate_change_7v21", "daily sessions in the last 7 days minus the previous 21 days", "sessions/day"),
    ("gap_mean_days", "typical days between active days", "days"),
    ("silence_vs_typical_gap", "days since last activity over the typical gap", "ratio"),
    ("view_to_cart_rate_90d", "add-to-carts per view, last 90 days", "ratio"),
    ("push_opens_prev_60d", "push opens in the 60 days before the last 30", "push opens"),
    ("days_since_last_push_open", "days since the last push open", "days"),
    ("widgets_30d", "widgets bought, last 30 days", "widgets"),
    ("refunds_total", "refunds, all history", "currency"),
    ("is_vip", "customer is vip", "indicator"),
    ("platform_is_android", "platform is android", "indicator"),
    ("platform_is_ios", "platform is ios", "indicator"),
    ("platform_is_web", "platform is web", "indicator"),
]
NAMES = [n for n, _, _ in FEATURES]
MANIFEST = {
    "features": [{"name": n, "description": d, "unit": u, "family": "x", "dtype": "float64"} for n, d, u in FEATURES],
    "attribute_levels": {"platform": ["android", "ios", "web"]},
    "problem": {"activity": {"include": None, "exclude": ["push_sent"]}},
}
BASE = {
    "days_since_last_activity": 2.0, "days_since_last_purchase": 10.0, "purchases_total": 5.0,
    "avg_order_value": 20.0, "clv_frequency": 4.0, "clv_recency_days": 40.0, "n_session_7d": 3.0,
    "n_session_30d": 12.0, "n_push_open_30d": 2.0, "n_support_ticket_30d": 0.0,
    "session_rate_change_7v21": 0.0, "gap_mean_days": 2.0, "silence_vs_typical_gap": 1.0,
    "view_to_cart_rate_90d": 0.1, "push_opens_prev_60d": 4.0, "days_since_last_push_open": 3.0,
    "widgets_30d": 1.0, "refunds_total": 0.0, "is_vip": 1.0,
    "platform_is_android": 1.0, "platform_is_ios": 0.0, "platform_is_web": 0.0,
}
MEDIANS = {
    "days_since_last_activity": 3.0, "days_since_last_purchase": 24.0, "n_support_ticket_30d": 0.0,
    "view_to_cart_rate_90d": 0.12, "widgets_30d": 1.0, "refunds_total": 0.0, "days_since_last_push_open": 17.0,
    "n_session_7d": 4.0, "n_session_30d": 9.0, "purchases_total": 2.0,
}
EXPLAINER = Explainer(MANIFEST["features"], MANIFEST["attribute_levels"], ActivityEvents(), MEDIANS)


def one(changes: dict[str, float], push: dict[str, float], direction: str = "up", top: int = 3) -> list[Reason]:
    """Reasons for one row: ``changes`` to BASE values, ``push`` contributions (others 0)."""
    X = pd.DataFrame([BASE | changes])[NAMES]
    C = pd.DataFrame([{n: push.get(n, 0.0) for n in NAMES} | {"bias": -1.0}])
    return reason_codes(X, C, EXPLAINER, top=top, direction=direction)[0]


def text(changes: dict[str, float], feature: str) -> str:
    reasons = one(changes, {feature: 1.0})
    assert len(reasons) == 1
    return reasons[0].text


# --------------------------------------------------------------------------- texts


@pytest.mark.parametrize(
    ("changes", "feature", "expected"),
    [
        ({"days_since_last_purchase": 45.0, "clv_frequency": 4.0, "clv_recency_days": 48.0},
         "days_since_last_purchase", "no purchase for 45 days (typical for this user: 12)"),
        # one purchase day: no rhythm of its own, so the population's
        ({"days_since_last_purchase": 45.2, "clv_frequency": 0.0, "clv_recency_days": 0.0},
         "days_since_last_purchase", "no purchase for 45 days (most users: 24)"),
        ({"days_since_last_purchase": np.nan, "purchases_total": 0.0}, "days_since_last_purchase", "no purchase yet"),
        ({"days_since_last_activity": 20.3, "silence_vs_typical_gap": 4.0, "gap_mean_days": 5.0},
         "days_since_last_activity", "no activity for 20 days, 4x this user's usual gap"),
        ({"days_since_last_activity": 20.0, "silence_vs_typical_gap": 2.5, "gap_mean_days": 8.0},
         "silence_vs_typical_gap", "no activity for 20 days, 2.5x this user's usual gap"),
        ({"days_since_last_activity": 1.0, "silence_vs_typical_gap": 0.5, "gap_mean_days": 2.0},
         "days_since_last_activity", "no activity for 1 day (usual gap for this user: 2)"),
        ({"n_push_open_30d": 0.0, "push_opens_prev_60d": 12.0}, "n_push_open_30d",
         "push opens fell from 6 to 0 in the last 30 days"),
        ({"n_push_open_30d": 4.0, "push_opens_prev_60d": 3.0}, "push_opens_prev_60d",
         "push opens rose from 1.5 to 4 in the last 30 days"),
        ({"session_rate_change_7v21": -0.8}, "session_rate_change_7v21",
         "sessions per day fell by 0.8 in the last 7 days vs the previous 21"),
        ({"n_support_ticket_30d": 3.0}, "n_support_ticket_30d", "3 support tickets in the last 30 days (most users: 0)"),
        ({"n_support_ticket_30d": 1.0}, "n_support_ticket_30d", "1 support ticket in the last 30 days (most users: 0)"),
        ({"view_to_cart_rate_90d": 0.05}, "view_to_cart_rate_90d",
         "add-to-carts per view, last 90 days: 5% (typical: 12%)"),
        ({"widgets_30d": 4.0}, "widgets_30d", "widgets bought, last 30 days: 4 widgets (typical: 1)"),
        ({"refunds_total": 12.5}, "refunds_total", "refunds, all history: 12.50 (typical: 0.00)"),
        ({"days_since_last_push_open": 40.4}, "days_since_last_push_open", "last push open 40 days ago (typical: 17)"),
        ({"days_since_last_push_open": np.nan}, "days_since_last_push_open", "no push open yet"),
        ({"avg_order_value": 1234.5}, "avg_order_value", "average order 1,234.50"),
        ({"is_vip": 0.0}, "is_vip", "customer is not vip"),
        ({"is_vip": 1.0}, "is_vip", "customer is vip"),
    ],
)
def test_reason_text(changes, feature, expected):
    assert text(changes, feature) == expected


def test_one_hot_group_speaks_for_the_users_own_level():
    web = {"platform_is_android": 0.0, "platform_is_ios": 0.0, "platform_is_web": 1.0}
    [r] = one(web, {"platform_is_ios": 0.4, "platform_is_android": 0.2, "platform_is_web": -0.1})
    assert (r.text, r.feature, r.value) == ("platform is web", "platform_is_web", 1.0)
    assert r.contribution == pytest.approx(0.5)  # the group's SHAP values add up


def test_windows_of_one_event_are_one_reason_with_the_strongest_window():
    reasons = one({"n_session_7d": 0.0, "n_session_30d": 2.0}, {"n_session_7d": 0.3, "n_session_30d": 0.5})
    assert [r.text for r in reasons] == ["2 sessions in the last 30 days (most users: 9)"]
    assert reasons[0].feature == "n_session_30d"
    assert reasons[0].contribution == pytest.approx(0.8)


def test_same_fact_in_other_words_is_shown_once():
    never = {"days_since_last_purchase": np.nan, "purchases_total": 0.0, "avg_order_value": np.nan,
             "clv_frequency": 0.0, "clv_recency_days": np.nan}
    reasons = one(never, {"days_since_last_purchase": 0.5, "avg_order_value": 0.4, "purchases_total": 0.3,
                          "n_support_ticket_30d": 0.1})
    assert [r.text for r in reasons] == ["no purchase yet", "0 support tickets in the last 30 days (most users: 0)"]


def test_no_sessions_in_a_window_already_covered_by_silence_says_silence_once():
    silent = {"days_since_last_activity": 10.0, "silence_vs_typical_gap": 5.0, "n_session_7d": 0.0}
    reasons = one(silent, {"days_since_last_activity": 0.6, "n_session_7d": 0.5, "widgets_30d": 0.1})
    assert [r.text for r in reasons] == [
        "no activity for 10 days, 5x this user's usual gap",
        "widgets bought, last 30 days: 1 widget (typical: 1)",
    ]


# --------------------------------------------------------------------------- sign and order


def test_only_positive_contributions_are_risks_ordered_by_contribution():
    push = {"n_support_ticket_30d": 0.2, "widgets_30d": 0.9, "refunds_total": -2.0, "is_vip": 0.5,
            "gap_mean_days": 0.0}
    reasons = one({}, push, top=5)
    assert [r.feature for r in reasons] == ["widgets_30d", "is_vip", "n_support_ticket_30d"]
    assert [r.contribution for r in reasons] == [0.9, 0.5, 0.2]
    assert [r.feature for r in one({}, push, top=2)] == ["widgets_30d", "is_vip"]
    down = one({}, push, direction="down")
    assert [(r.feature, r.contribution) for r in down] == [("refunds_total", -2.0)]


def test_rows_are_independent_and_may_have_no_reasons():
    X = pd.DataFrame([BASE, BASE | {"n_support_ticket_30d": 2.0}])[NAMES]
    C = pd.DataFrame(0.0, index=[7, 9], columns=[*NAMES, "bias"])
    C.loc[9, "n_support_ticket_30d"] = 1.0
    out = reason_codes(X, C, EXPLAINER)
    assert out[0] == []
    assert [r.text for r in out[1]] == ["2 support tickets in the last 30 days (most users: 0)"]
    frame = reasons_frame(out, top=2)
    assert frame.to_dict("list") == {"reason_1": [None, out[1][0].text], "reason_2": [None, None]}  # null, never ""


def test_every_feature_belongs_to_exactly_one_fact():
    members = [m for f in EXPLAINER.facts for m in f.members]
    assert sorted(members) == sorted(NAMES)


def test_bad_calls_are_one_line_errors():
    X = pd.DataFrame([BASE])[NAMES]
    C = pd.DataFrame(0.0, index=[0], columns=NAMES)
    with pytest.raises(ChurnkitError, match="direction must be"):
        reason_codes(X, C, EXPLAINER, direction="sideways")
    with pytest.raises(ChurnkitError, match="contributions lack"):
        reason_codes(X, C.drop(columns="is_vip"), EXPLAINER)


# --------------------------------------------------------------------------- profile


def test_population_profile_is_json_and_right():
    df = pd.DataFrame({n: np.arange(11, dtype="float64") for n in NAMES})
    df.loc[:4, "avg_order_value"] = np.nan
    df["is_vip"] = np.nan
    prof = json.loads(population_profile(df, NAMES).model_dump_json())
    assert prof["rows"] == 11
    assert {k: prof["features"]["widgets_30d"][k] for k in ("q10", "q25", "median", "q75", "q90", "mean",
                                                            "missing_share", "low", "high")} == {
        "q10": 1.0, "q25": 2.5, "median": 5.0, "q75": 7.5, "q90": 9.0, "mean": 5.0, "missing_share": 0.0,
        "low": 0.0, "high": 10.0,
    }
    assert prof["features"]["widgets_30d"]["edges"] == pytest.approx([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0])
    assert sum(prof["features"]["widgets_30d"]["shares"]) == pytest.approx(1.0)
    assert prof["features"]["is_vip"]["edges"] == []
    assert prof["features"]["avg_order_value"]["median"] == 7.5
    assert prof["features"]["avg_order_value"]["missing_share"] == pytest.approx(5 / 11)
    assert prof["features"]["is_vip"]["median"] is None
    with pytest.raises(ChurnkitError, match="lacks features"):
        population_profile(df.drop(columns="is_vip"), NAMES)


# --------------------------------------------------------------------------- SHAP


def test_native_contributions_equal_shap_tree_explainer():
    lgb = pytest.importorskip("lightgbm")
    shap = pytest.importorskip("shap")
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 5)), columns=[f"f{i}" for i in range(5)])
    X.iloc[::7, 2] = np.nan
    y = (X.f0 + 0.5 * X.f1.fillna(0) * X.f3 + rng.normal(scale=0.5, size=400) > 0).astype(int)
    model = lgb.LGBMClassifier(n_estimators=30, num_leaves=8, min_child_samples=5, verbose=-1).fit(X, y)
    native = shap_contributions(model, X[["f4", "f3", "f2", "f1", "f0"]])  # columns in any order
    assert list(native.columns) == ["f0", "f1", "f2", "f3", "f4", "bias"]
    expl = shap.TreeExplainer(model.booster_)
    values = np.asarray(expl.shap_values(X))
    values = values[1] if values.ndim == 3 and values.shape[0] == 2 else values
    np.testing.assert_allclose(native[list(X.columns)].to_numpy(), values, atol=1e-6)
    np.testing.assert_allclose(native["bias"].to_numpy(), np.ravel(expl.expected_value)[-1], atol=1e-6)
    raw = model.predict(X, raw_score=True)
    np.testing.assert_allclose(native.sum(axis=1).to_numpy(), raw, atol=1e-6)
    assert shap_contributions(model.booster_, X).equals(native)


# --------------------------------------------------------------------------- speed


def test_reasons_for_100k_rows_by_90_features_take_seconds():
    rng = np.random.default_rng(1)
    extra = [(f"metric_{i}_30d", f"metric {i} in the last 30 days", "events") for i in range(90 - len(FEATURES))]
    manifest = MANIFEST | {"features": MANIFEST["features"] + [
        {"name": n, "description": d, "unit": u, "family": "x", "dtype": "float64"} for n, d, u in extra]}
    names = [f["name"] for f in manifest["features"]]
    assert len(names) == 90
    n = 100_000
    X = pd.DataFrame(rng.gamma(2.0, 5.0, size=(n, 90)), columns=names)
    C = pd.DataFrame(rng.normal(size=(n, 90)), columns=names).assign(bias=-1.0)
    profile = population_profile(X.iloc[:5000], names)
    explainer = Explainer(manifest["features"], manifest["attribute_levels"], ActivityEvents(), profile.medians())
    start = time.perf_counter()
    out = reason_codes(X, C, explainer, top=3)
    elapsed = time.perf_counter() - start
    assert len(out) == n and all(len(r) == 3 for r in out[:100])
    # ~3 s on a busy 2-core box; a Python loop over all features per row takes minutes
    assert elapsed < 15, f"{elapsed:.1f} s for 100k rows"
