"""The CUPAC covariate: an OLS prediction from pre-assignment signals, missing values flagged."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.campaigns.abtest import results_table
from churnkit.campaigns.cupac import cupac_covariate
from churnkit.errors import ChurnkitError


def test_the_covariate_is_the_least_squares_prediction_and_beats_either_signal():
    rng = np.random.default_rng(5)
    n = 8000
    pre, score = rng.normal(size=n), rng.uniform(size=n)
    arm = np.where(rng.uniform(size=n) < 0.5, "treatment", "control")
    y = 0.6 * pre - 1.5 * score + rng.normal(size=n) + 0.1 * (arm == "treatment")
    rows = pd.DataFrame({"variant": arm, "y": y, "pre_y": pre, "score": score})
    rows.loc[:99, "score"] = np.nan  # users with no history have no churn score
    rows["cupac"] = cupac_covariate(rows, "y", ["pre_y", "score"])
    X = np.column_stack([np.ones(n), pre, rows["score"].fillna(rows["score"].mean()), rows["score"].isna()])
    assert np.allclose(rows["cupac"], X @ np.linalg.lstsq(X, y, rcond=None)[0])
    t = {c: results_table("c", rows, ["y"], "control", covariates={"y": c} if c else None).iloc[0]
         for c in (None, "pre_y", "cupac")}
    assert t["cupac"]["variance_reduction"] > t["pre_y"]["variance_reduction"] + 0.1  # 35% vs 23% by design
    for r in t.values():  # the same target: each interval covers the true effect here
        assert r["ci_low"] < 0.1 < r["ci_high"]


def test_no_signal_is_an_error():
    with pytest.raises(ChurnkitError, match="at least one"):
        cupac_covariate(pd.DataFrame({"y": [1.0, 2.0]}), "y", [])
