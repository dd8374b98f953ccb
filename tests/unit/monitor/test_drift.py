"""Feature drift against a training profile: PSI as defined, rare false flags on the same
population (by simulation), and each kind of break flagged for its reason."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.config import MonitorSettings
from churnkit.datasets.profile import population_profile
from churnkit.errors import ChurnkitError
from churnkit.monitor.drift import feature_drift, psi


def population(n: int, rng: np.random.Generator, shift: float = 0.0) -> pd.DataFrame:
    """A continuous feature, a zero-inflated count (ties), a 0/1 flag and a feature with gaps."""
    counts = np.where(rng.random(n) < 0.7 - 0.6 * shift, 0, rng.poisson(3.0, n))
    gaps = rng.exponential(10.0, n)
    gaps[rng.random(n) < 0.05] = np.nan
    return pd.DataFrame({"spend": rng.lognormal(3.0 + shift, 0.6, n), "orders_30d": counts.astype(float),
                         "is_android": (rng.random(n) < 0.4 + 0.8 * shift).astype(float), "gap_days": gaps})


@pytest.fixture(scope="module")
def profile():
    return population_profile(population(20_000, np.random.default_rng(0)), ["spend", "orders_30d", "is_android",
                                                                            "gap_days"])


def test_psi_is_the_textbook_formula():
    assert psi([0.5, 0.5], [0.9, 0.1]) == pytest.approx(0.4 * np.log(1.8) + 0.4 * np.log(5.0))
    assert psi([0.2, 0.3, 0.5], [0.2, 0.3, 0.5]) == 0.0
    assert np.isfinite(psi([0.5, 0.5], [1.0, 0.0]))  # an emptied bin is large, not infinite
    with pytest.raises(ChurnkitError, match="2 expected shares but 3"):
        psi([0.5, 0.5], [0.2, 0.3, 0.5])


def test_ties_are_exact_in_the_profile(profile):
    orders = profile.features["orders_30d"]
    assert orders.edges[0] == 0.0 and orders.shares[0] == pytest.approx(0.7 + 0.3 * np.exp(-3.0), abs=0.01)
    assert sum(orders.shares) == pytest.approx(1.0) and len(orders.shares) == len(orders.edges) + 1
    flag = profile.features["is_android"]
    assert flag.edges == (0.0, 1.0) and flag.shares[0] == pytest.approx(0.6, abs=0.01) and flag.shares[2] == 0.0


def test_the_same_population_is_rarely_flagged(profile):
    """200 fresh samples of 2,000 users from the training population: no feature of any is
    flagged, and the PSI stays far below the threshold."""
    rng = np.random.default_rng(1)
    flags, worst = 0, 0.0
    for _ in range(200):
        table = feature_drift(profile, population(2_000, rng))
        flags += int(table["drifted"].sum())
        worst = max(worst, float(table["psi"].max()))
    assert flags <= 2 and worst < 0.1  # 800 feature checks


def test_each_kind_of_break_is_flagged_for_its_reason(profile):
    rng = np.random.default_rng(2)
    now = population(5_000, rng, shift=0.5)  # richer, busier (40% without an order, not 70%), 80% Android
    now.loc[now.sample(frac=0.4, random_state=0).index, "gap_days"] = np.nan  # a broken upstream field
    table = feature_drift(profile, now).set_index("feature")
    assert table.loc[["spend", "orders_30d", "is_android"], "drifted"].all()
    assert "distribution moved" in table.loc["spend", "why"] and table.loc["spend", "psi"] > 0.25
    assert table.loc["gap_days", "drifted"] and "missing 5% -> 4" in table.loc["gap_days", "why"]
    assert "distribution moved" not in table.loc["gap_days", "why"]  # the values present did not move
    doubled = population(5_000, rng).assign(spend=lambda d: d["spend"] * 100)  # cents for dollars
    row = feature_drift(profile, doubled, ["spend"]).iloc[0]
    assert row["drifted"] and row["out_of_range"] > 0.5 and "outside the reference range" in row["why"]
    assert row["broken"] and table.loc["gap_days", "broken"]  # the upstream field, not the population
    assert not table.loc["spend", "broken"]
    assert list(feature_drift(profile, now).columns[:3]) == ["feature", "psi", "p_value"]


def test_thresholds_decide_and_bad_input_is_one_line(profile):
    now = population(5_000, np.random.default_rng(3), shift=0.1)
    lax = feature_drift(profile, now, thresholds=MonitorSettings(psi=5.0, share_change=1.0, missing_increase=1.0,
                                                                 out_of_range=1.0))
    assert not lax["drifted"].any()
    with pytest.raises(ChurnkitError, match="lack feature 'spend'"):
        feature_drift(profile, now.drop(columns="spend"))
    with pytest.raises(ChurnkitError, match="no feature 'nope'"):
        feature_drift(profile, now, ["nope"])


def test_a_share_moving_in_a_flag_is_caught_though_its_psi_is_small():
    rng = np.random.default_rng(4)
    then = pd.DataFrame({"is_paid": (rng.random(20_000) < 0.19).astype(float)})
    ref = population_profile(then, ["is_paid"])
    now = pd.DataFrame({"is_paid": (rng.random(3_000) < 0.30).astype(float)})
    row = feature_drift(ref, now).iloc[0]
    assert row["psi"] < 0.1 and row["drifted"] and row["why"].startswith("share ") and " moved " in row["why"]
    same = pd.DataFrame({"is_paid": (rng.random(3_000) < 0.19).astype(float)})
    assert not feature_drift(ref, same).iloc[0]["drifted"]


def test_a_calendar_value_is_not_judged_and_ages_are_aged_first():
    rng = np.random.default_rng(5)
    age = rng.gamma(2.0, 60.0, 20_000)
    ref = population_profile(pd.DataFrame({"age": age, "days_since_campaign": 3.0}), ["age", "days_since_campaign"])
    arrived = rng.uniform(0, 42, 150)  # users who came since: younger than anyone then
    later = pd.DataFrame({"age": np.r_[rng.gamma(2.0, 60.0, 2_850) + 42, arrived], "days_since_campaign": 10.0})
    raw = feature_drift(ref, later).set_index("feature")
    assert raw.loc["age", "drifted"] and not raw.loc["days_since_campaign", "drifted"]
    assert "calendar value" in raw.loc["days_since_campaign", "why"]
    aged = feature_drift(ref, later, aged={"age": 42.0}).set_index("feature")
    assert not aged.loc["age", "drifted"] and aged.loc["age", "psi"] < 0.05 and aged.loc["age", "out_of_range"] < 0.01
