"""The linear base the boosted models start from: what it fits, how it explains, and why it is there."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from churnkit.metrics import decile_mape, normalized_gini
from churnkit.models.classifier import PropensityClassifier
from churnkit.models.linear_base import BASE_COLUMNS, LinearBase
from churnkit.models.ltv import LTVModel, TweedieLTV


def customers(n: int, seed: int, freq_range: tuple[int, int]) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Buyers whose odds of buying again are log-linear in recency and frequency (the BTYD
    shape), with never-buyers (recency unknown) who rarely buy; revenue follows the odds."""
    rng = np.random.default_rng(seed)
    freq = rng.integers(*freq_range, n).astype(float)
    recency = rng.exponential(40.0, n)
    aov = rng.gamma(3.0, 20.0, n)
    never = rng.random(n) < 0.15
    logit = 1.0 - 1.1 * np.log1p(recency) + 1.3 * np.log1p(freq)
    logit = np.where(never, -3.0, logit)
    X = pd.DataFrame({
        "days_since_last_activity": recency,
        "days_since_last_purchase": np.where(never, np.nan, recency),
        "clv_frequency": np.where(never, 0.0, freq),
        "avg_order_value": np.where(never, np.nan, aov),
        "noise": rng.normal(size=n),
    })
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)
    revenue = y * rng.gamma(2.0, aov / 2.0)
    return X, y, revenue


def test_the_base_reads_the_rfm_core_it_finds_and_knows_missing_from_zero():
    X, y, _ = customers(4000, 1, (1, 10))
    cols = LinearBase.columns_in(list(X.columns))
    assert cols == [c for c in BASE_COLUMNS if c in X.columns] and "noise" not in cols
    base = LinearBase("logit").fit(X, y, cols)
    terms = base.describe()
    assert "days_since_last_purchase_missing" in terms and "clv_frequency*days_since_last_activity" not in terms
    never = X.days_since_last_purchase.isna()
    # a never-buyer is scored as one, not as someone who bought today
    today = X[~never].head(1).assign(days_since_last_activity=0.0, days_since_last_purchase=0.0)
    assert base.margin(X[never]).mean() < base.margin(today)[0] - 2
    assert roc_auc_score(y, base.margin(X)) > 0.75


def test_contributions_are_exact_for_the_base_and_the_boosted_models():
    X, y, revenue = customers(3000, 2, (1, 10))
    cols = LinearBase.columns_in(list(X.columns))
    for base in (LinearBase("logit").fit(X, y, cols), LinearBase("log").fit(X, revenue, cols)):
        c = base.contributions(X.head(200), list(X.columns))
        np.testing.assert_allclose(c.sum(axis=1), base.margin(X.head(200)), atol=1e-9)
        assert (c[:, list(X.columns).index("noise")] == 0).all()
    Xv, yv, rv = customers(1000, 3, (1, 10))
    clf = PropensityClassifier(random_state=0).fit(X, y, eval_set=(Xv, yv))
    assert clf.base_ is not None
    np.testing.assert_allclose(clf.contributions(Xv).sum(axis=1), clf.predict_raw(Xv), atol=1e-9)
    tw = TweedieLTV(random_state=0).fit(X, revenue, eval_set=(Xv, rv))
    np.testing.assert_allclose(np.exp(tw.contributions(Xv).sum(axis=1)), tw.predict(Xv), rtol=1e-9)
    plain = PropensityClassifier(random_state=0, base="none").fit(X, y, eval_set=(Xv, yv))
    assert plain.base_ is None


@pytest.mark.parametrize("kind", ["purchase", "revenue"])
def test_boosting_from_the_base_carries_the_shape_to_customers_older_than_any_training_row(kind):
    """Trained on customers with at most 5 repeat purchases, scored on ones with 5 to 60:
    trees extrapolate flat past the training range and cannot rank the frequent buyers; the
    boosted-from-linear model can (CDNOW's test customers are older than its training rows)."""
    X, y, revenue = customers(6000, 4, (1, 6))
    Xv, yv, rv = customers(2000, 5, (1, 6))
    Xt, yt, rt = customers(4000, 6, (5, 60))
    if kind == "purchase":
        fit = lambda base: PropensityClassifier(random_state=0, base=base).fit(X, y, eval_set=(Xv, yv))
        score = lambda m: roc_auc_score(yt, m.predict_proba(Xt)[:, 1])
    else:
        fit = lambda base: LTVModel(random_state=0, base=base).fit(X, revenue, eval_set=(Xv, rv))
        score = lambda m: normalized_gini(rt, m.predict(Xt))
    assert score(fit("linear_rfm")) > score(fit("none")) + 0.02


def test_a_bad_base_is_one_line():
    from churnkit.errors import ChurnkitError
    X, y, _ = customers(500, 7, (1, 5))
    with pytest.raises(ChurnkitError, match="base must be one of linear_rfm, none"):
        PropensityClassifier(base="spline").fit(X, y)


def test_the_level_map_fixes_a_level_learnt_elsewhere_and_keeps_the_order():
    """Predictions 40% too high and compressed (b = 0.6 on the log scale: the top too low,
    the bottom too high): the map fitted on held-out rows brings every decile's total back
    and keeps the ranking; right predictions stay as they are."""
    from churnkit.models.ltv import LevelMap

    rng = np.random.default_rng(8)
    mu = rng.lognormal(2.0, 1.0, 20_000)
    y = np.where(rng.random(mu.size) < 0.5, rng.gamma(2.0, mu), 0.0)  # mean: mu
    wrong = 1.4 * np.exp(0.6 * np.log(mu) + 0.4 * np.log(mu).mean())
    m = LevelMap().fit(wrong[:10_000], y[:10_000])
    assert m.kept_ and 1.4 < m.b_ < 1.9  # undoes the compression (1 / 0.6)
    fixed = m.predict(wrong[10_000:])
    held = y[10_000:]
    assert abs(fixed.sum() / held.sum() - 1) < 0.05
    assert decile_mape(held, fixed) < 0.1
    assert decile_mape(held, wrong[10_000:]) > 0.3
    assert (np.argsort(fixed) == np.argsort(wrong[10_000:])).all()
    right = LevelMap().fit(mu[:10_000], y[:10_000])
    assert not right.kept_ or (abs(right.a_) < 0.1 and abs(right.b_ - 1) < 0.05)


def test_ltv_contributions_sum_to_the_log_of_the_levelled_prediction():
    X, _, revenue = customers(3000, 9, (1, 10))
    Xv, _, rv = customers(1500, 10, (1, 10))
    m = LTVModel(random_state=0).fit(X, revenue * 0.5, eval_set=(Xv, rv))  # learnt at half the level
    assert m.level_.kept_
    np.testing.assert_allclose(np.exp(m.contributions(Xv).sum(axis=1)), m.predict(Xv), rtol=1e-9)
    assert abs(m.predict(Xv).sum() / rv.sum() - 1) < 0.1


def test_the_logistic_takes_pair_products_where_later_rows_rank_better_with_them():
    from churnkit.models.linear_base import fit_base

    rng = np.random.default_rng(11)

    def rows(n):
        rec, freq = rng.exponential(40.0, n), rng.integers(1, 30, n).astype(float)
        X = pd.DataFrame({"days_since_last_purchase": rec, "clv_frequency": freq})
        # silence means more for a frequent buyer: an interaction no sum of logs can state
        logit = 3.0 - np.log1p(rec) * (0.1 + 0.5 * np.log1p(freq))
        return X, (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(float)

    (X, y), (Xv, yv) = rows(8000), rows(4000)
    base = fit_base("logit", X, y, ["days_since_last_purchase", "clv_frequency"], (Xv, yv))
    assert base.degree_ == 2 and "days_since_last_purchase*clv_frequency" in base.describe()
    one = LinearBase("logit", degree=1).fit(X, y, ["days_since_last_purchase", "clv_frequency"])
    assert roc_auc_score(yv, base.margin(Xv)) > roc_auc_score(yv, one.margin(Xv))
    revenue = fit_base("log", X, y * 10, ["days_since_last_purchase", "clv_frequency"], (Xv, yv * 10))
    assert revenue.degree_ == 1  # exponentiated products overshoot bigger customers


@pytest.mark.parametrize("link,degree", [("logit", 2), ("log", 1)])
def test_margin_matrix_is_margin_bit_for_bit_in_any_column_order(link, degree):
    """The service's matrix path computes all base columns at once; it must give what the
    frame path gives, missing values, negatives and single rows included."""
    X, y, revenue = customers(3000, 4, (1, 10))
    base = LinearBase(link, degree=degree).fit(X, y if link == "logit" else revenue, LinearBase.columns_in(list(X.columns)))
    assert base is not None and any(base.flags_)
    rng = np.random.default_rng(5)
    rows = pd.concat([X, X.mask(rng.random(X.shape) < 0.3), -X, X * 1e12, X * 0.0], ignore_index=True)
    names = list(reversed(rows.columns))  # the matrix's columns need not be in the base's order
    A = np.ascontiguousarray(rows[names].to_numpy("float64"))
    np.testing.assert_array_equal(base.margin_matrix(A, names), base.margin(rows), strict=True)
    as_array = np.array(names, dtype=object)  # as the models hold them (feature_names_in_)
    np.testing.assert_array_equal(base.margin_matrix(A, as_array), base.margin(rows), strict=True)
    for i in range(0, len(rows), 251):
        np.testing.assert_array_equal(base.margin_matrix(A[i:i + 1], names), base.margin(rows.iloc[[i]]), strict=True)
