"""Budgeted targeting: net value order, sleeping dogs and unprofitable contacts left out,
budgets in contacts and in money, one-line errors; and the uplift fit's pieces."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.campaigns.targeting import LIST_COLUMNS, Budget, target
from churnkit.campaigns.uplift import UpliftModel, qini_coefficient
from churnkit.campaigns.uplift_fit import budget_table, choose_learner, split_campaigns
from churnkit.errors import ChurnkitError


def candidates(n: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"user_id": [f"u{i:03d}" for i in range(n)], "uplift": rng.normal(0.02, 0.05, n),
                         "value": rng.gamma(2.0, 20.0, n), "contact_cost": 0.5})


def test_the_list_is_the_most_net_value_first_without_harm_or_loss():
    c = candidates()
    chosen, s = target(c, Budget(contacts=1000))
    assert list(chosen.columns[: len(LIST_COLUMNS)]) == list(LIST_COLUMNS)
    net = c["uplift"] * c["value"] - 0.5
    worth = c[(c["uplift"] >= 0) & (net > 0)]
    assert set(chosen["user_id"]) == set(worth["user_id"])  # every worthwhile user, nobody else
    assert chosen["net_value"].is_monotonic_decreasing and chosen["rank"].tolist() == list(range(1, len(chosen) + 1))
    assert s["negative_effect"] == int((c["uplift"] < 0).sum())
    assert s["candidates"] == s["negative_effect"] + s["not_worth_the_cost"] + s["worth_contacting"]
    np.testing.assert_allclose(chosen["cumulative_cost"], 0.5 * chosen["rank"])


def test_a_user_a_contact_puts_off_is_never_chosen_even_with_a_big_value():
    c = pd.DataFrame({"user_id": ["a", "b", "c"], "uplift": [-0.01, 0.001, 0.2], "value": [1e6, 10.0, 10.0],
                      "contact_cost": [0.0, 0.5, 0.5]})
    chosen, s = target(c, Budget(contacts=3))
    assert chosen["user_id"].tolist() == ["c"]  # b: 0.01 of value is not worth 0.5
    assert s["negative_effect"] == 1 and s["not_worth_the_cost"] == 1


@pytest.mark.parametrize("money", [0.4, 3.0, 10.25])
def test_a_money_budget_is_never_exceeded_and_keeps_the_order(money):
    c = candidates().assign(contact_cost=lambda d: np.where(d.index % 2 == 0, 0.25, 1.0))
    everyone, _ = target(c, Budget(contacts=10_000))
    chosen, s = target(c, Budget(money=money))
    assert s["spend"] <= money + 1e-9
    assert chosen["user_id"].tolist() == everyone["user_id"].head(len(chosen)).tolist()
    if len(chosen) < len(everyone):  # the next one would have broken the budget
        assert s["spend"] + everyone["contact_cost"].iloc[len(chosen)] > money
    both, _ = target(c, Budget(contacts=3, money=money))
    assert len(both) == min(3, len(chosen))


def test_bad_budgets_and_candidates_are_one_line_errors():
    for kwargs, words in [({}, "needs a number of contacts"), ({"contacts": 0}, "at least 1"),
                          ({"money": -1.0}, "must be positive")]:
        with pytest.raises(ChurnkitError, match=words):
            Budget(**kwargs)
    c = candidates(5)
    c.loc[2, "uplift"] = np.nan
    with pytest.raises(ChurnkitError, match="1 candidate.*u002"):
        target(c, Budget(contacts=2))
    with pytest.raises(ChurnkitError, match="lack"):
        target(c.drop(columns="value"), Budget(contacts=2))


def rows(n_campaigns: int = 3, n: int = 600, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(n_campaigns):
        x = rng.normal(size=n)
        t = rng.integers(0, 2, n)
        y = (rng.random(n) < 0.3 + 0.2 * t * (x > 0)).astype(float)  # only x > 0 responds
        frames.append(pd.DataFrame({"campaign_id": f"c{k}", "user_id": [f"u{i}" for i in range(n)],
                                    "assigned_ts": pd.Timestamp("2024-01-01", tz="UTC") + pd.Timedelta(days=30 * k),
                                    "treatment": t, "label": y, "x": x, "noise": rng.normal(size=n)}))
    return pd.concat(frames, ignore_index=True)


def test_the_latest_campaigns_are_held_out():
    df = rows(3)
    assert split_campaigns(df, 1) == (["c0", "c1"], ["c2"])
    assert split_campaigns(df, 2) == (["c0"], ["c1", "c2"])
    with pytest.raises(ChurnkitError, match="at least 4 randomised campaigns"):
        split_campaigns(df, 3)


def test_the_learner_with_the_best_validation_qini_is_chosen_and_ranks_responders_first():
    df = rows(2, 3000)
    fit, valid = df[df["campaign_id"] == "c0"], df[df["campaign_id"] == "c1"]

    def make(name: str) -> UpliftModel:
        return UpliftModel(learner=name, base_params={"num_leaves": 4, "min_child_samples": 200, "n_estimators": 150})

    best, scores = choose_learner(["t", "x"], make, (fit[["x", "noise"]], fit["treatment"].to_numpy(),
                                                      fit["label"].to_numpy()),
                                  (valid[["x", "noise"]], valid["treatment"].to_numpy(), valid["label"].to_numpy()))
    oracle = qini_coefficient(0.2 * (valid["x"] > 0), valid["treatment"], valid["label"])
    assert set(scores) == {"t", "x"} and scores[best] == max(scores.values()) and scores[best] > 0.4 * oracle > 0
    model = make(best).fit(fit[["x", "noise"]], fit["treatment"], fit["label"])
    u = model.predict(valid[["x", "noise"]])
    assert u[valid["x"].to_numpy() > 0.5].mean() > u[valid["x"].to_numpy() < -0.5].mean() + 0.1
    contrib = model.contributions(valid[["x", "noise"]])
    assert list(contrib.columns) == ["x", "noise", "bias"]
    assert contrib["x"].abs().mean() > 2 * contrib["noise"].abs().mean()  # the reasons name the real driver
    np.testing.assert_allclose(contrib.sum(axis=1), model.explainer_.predict(valid[["x", "noise"]].to_numpy()),
                               atol=1e-9)
    assert model.explainer_r2_ > 0.8


def test_the_budget_table_sums_the_true_effects_of_the_top_users():
    df = rows(1, 1000).assign(true_effect=lambda d: 0.2 * (d["x"] > 0))
    table = budget_table({"uplift": df["x"]}, df, seed=0, budgets=(0.1, 0.5))
    top = table[table["ranking"] == "uplift"].set_index("budget_share")
    assert top.loc[0.1, "contacts"] == 100 and top.loc[0.1, "true_incremental"] == pytest.approx(20.0)
    assert top.loc[0.5, "true_incremental"] == pytest.approx(0.2 * min(500, (df["x"] > 0).sum()))
    rand = table[table["ranking"] == "random"].set_index("budget_share")
    assert rand.loc[0.5, "true_incremental"] < top.loc[0.5, "true_incremental"]
