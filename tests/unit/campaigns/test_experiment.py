"""The pure steps of a table experiment: the table's contract, CUPED covariates from several
columns, identifiers, feature encoding and the stratified split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from churnkit.campaigns import experiment as ex
from churnkit.errors import ChurnkitError


@pytest.fixture
def table() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 600
    x1, x2 = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({
        "id": np.arange(n), "arm": rng.choice(["a", "b", "c"], n), "x1": x1, "x2": x2,
        "city": rng.choice(["North", "South"], n), "flag": rng.random(n) < 0.5,
        "y": x1 + 0.5 * x2 + rng.normal(size=n),
    })


def test_the_variants_come_back_control_first(table):
    assert ex.check_table(table, "arm", "b", ["y"], ["x1"]) == ["b", "a", "c"]


def test_a_column_used_twice_is_refused(table):
    with pytest.raises(ChurnkitError, match="used twice"):
        ex.check_table(table, "arm", "a", ["y"], ["y"])


def test_two_covariates_become_one_ols_fit(table):
    data, mapping = ex.cuped_covariates(table, ["y"], ["x1", "x2"])
    assert mapping == {"y": "y~x1+x2"}
    resid = data["y"] - data["y~x1+x2"]
    assert abs(resid.mean()) < 1e-9 and abs(np.corrcoef(resid, table["x1"])[0, 1]) < 1e-9
    one, single = ex.cuped_covariates(table, ["y"], ["x1"])
    assert single == {"y": "x1"} and one is table
    constant = table.assign(z=1.0)
    assert ex.cuped_covariates(constant, ["y"], ["z"])[1] == {}


def test_identifiers_are_not_features_and_text_is_one_hot(table):
    assert ex.identifiers(table, ["id", "x1", "city", "flag"]) == ["id"]
    X = ex.uplift_features(table, ["x1", "city", "flag"])
    assert list(X.columns) == ["x1", "city=North", "city=South", "flag"]
    assert (X[["city=North", "city=South"]].sum(axis=1) == 1).all() and X.dtypes.eq("float64").all()


def test_the_split_keeps_each_arms_share_and_is_reproducible(table):
    labels = ex.split(table["arm"], seed=3)
    again = ex.split(table["arm"], seed=3)
    assert (labels == again).all() and set(labels) == {"train", "validation", "test"}
    shares = pd.crosstab(table["arm"], labels, normalize="index")
    assert np.allclose(shares["train"], 0.5, atol=0.01) and np.allclose(shares["test"], 0.25, atol=0.01)
