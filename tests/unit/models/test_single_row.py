"""One row through LightGBM's prepared single-row C call: the same values as Booster.predict."""

from __future__ import annotations

import gc

import lightgbm as lgb
import numpy as np
import pytest

from churnkit.models import single_row


def booster(objective: str, seed: int = 0) -> tuple[lgb.Booster, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(600, 8))
    X[rng.random(X.shape) < 0.2] = np.nan
    y = (np.nan_to_num(X[:, 0]) + rng.normal(size=600) > 0).astype(float)
    if objective != "binary":
        y = np.exp(np.nan_to_num(X[:, 1])) * y
    params = {"objective": objective, "verbose": -1, "num_threads": 1, "seed": seed, "deterministic": True}
    b = lgb.train(params, lgb.Dataset(X, y), num_boost_round=30)
    rows = np.concatenate([X[:50], np.full((1, 8), np.nan), np.zeros((1, 8)), X[:5] * 1e9, -X[:5]])
    return b, rows


@pytest.mark.parametrize("objective", ["binary", "tweedie", "regression"])
@pytest.mark.parametrize("raw_score", [False, True])
def test_each_row_is_what_booster_predict_gives(objective, raw_score):
    b, rows = booster(objective)
    for row in rows:
        A = np.ascontiguousarray(row[None, :])
        got = single_row.predict(b, A, raw_score=raw_score, num_threads=1)
        want = b.predict(A, raw_score=raw_score, num_threads=1)
        assert got.shape == want.shape == (1,)
        assert got.tobytes() == want.tobytes()  # bit for bit


def test_a_best_iteration_is_honoured_as_booster_predict_does():
    b, rows = booster("binary")
    b.best_iteration = 7
    A = np.ascontiguousarray(rows[:1])
    assert single_row.predict(b, A, num_threads=1).tobytes() == b.predict(A, num_threads=1).tobytes()
    assert single_row.predict(b, A, num_threads=1).tobytes() != b.predict(A, num_threads=1, num_iteration=-1).tobytes()


def test_anything_but_one_contiguous_float64_row_goes_to_booster_predict():
    b, rows = booster("binary")
    many = np.ascontiguousarray(rows[:3])
    np.testing.assert_array_equal(single_row.predict(b, many, num_threads=1), b.predict(many, num_threads=1))
    strided = np.asfortranarray(rows[:1, ::1].repeat(2, axis=0))[:1]
    np.testing.assert_array_equal(single_row.predict(b, strided, num_threads=1), b.predict(strided, num_threads=1))
    as_f32 = rows[:1].astype(np.float32)
    np.testing.assert_array_equal(single_row.predict(b, as_f32, num_threads=1), b.predict(as_f32, num_threads=1))


def test_prepared_calls_go_with_their_booster():
    b, rows = booster("binary", seed=3)
    single_row.predict(b, np.ascontiguousarray(rows[:1]), num_threads=1)
    assert b in single_row._PREPARED
    count = len(single_row._PREPARED)
    del b
    gc.collect()
    assert len(single_row._PREPARED) == count - 1
