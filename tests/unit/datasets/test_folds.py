"""Backtest plans: time order, the gap rule, the test is the latest, clear errors."""

from __future__ import annotations

import datetime as dt

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from churnkit.datasets.folds import cutoffs_needed, plan_backtest, rows
from churnkit.errors import ChurnkitError

D0 = dt.date(2024, 1, 1)


def weekly(n: int, step: int = 7) -> list[dt.date]:
    return [D0 + dt.timedelta(days=step * i) for i in range(n)]


def assert_sound(plan, h: int) -> None:
    """Every promise a plan makes, checked against its own dates."""
    gap = dt.timedelta(days=h)
    cuts = list(plan.cutoffs)
    assert cuts == sorted(set(cuts))
    # the test is the latest cutoffs
    assert list(plan.test) == cuts[-len(plan.test):]
    first_test = plan.test[0]
    for t in plan.final_train:
        assert t + gap <= first_test
    previous_valid = None
    previous_train: set = set()
    for f in plan.folds:
        assert f.train and f.valid
        assert list(f.valid) == sorted(f.valid)
        for v in f.valid:
            assert v + gap <= first_test  # validation windows end before the test begins
            assert v in plan.final_train
            for t in f.train:
                assert t + gap <= v  # label windows never overlap
        assert max(f.train) < min(f.valid)
        if previous_valid is not None:
            assert min(f.valid) > max(previous_valid)  # folds move forward in time
            assert previous_train <= set(f.train)  # expanding window
        previous_valid, previous_train = f.valid, set(f.train)
    assert not set(plan.final_train) & set(plan.test)


def test_weekly_seven_day_horizon() -> None:
    plan = plan_backtest(weekly(12), 7)
    assert plan.test == (weekly(12)[-1],)
    assert [f.valid for f in plan.folds] == [(c,) for c in weekly(12)[8:11]]
    assert plan.folds[0].train == tuple(weekly(12)[:8])
    assert plan.final_train == tuple(weekly(12)[:11])
    assert_sound(plan, 7)


def test_long_horizon_leaves_a_gap() -> None:
    cuts = weekly(12)
    plan = plan_backtest(cuts, 28)
    # the last 3 cutoffs before the test have windows that run into it
    assert plan.final_train == tuple(cuts[:8])
    assert plan.folds[-1].valid == (cuts[7],)
    assert plan.folds[-1].train == tuple(cuts[:4])
    assert_sound(plan, 28)


def test_inputs_in_any_form_and_order() -> None:
    cuts = weekly(6)
    mixed = [str(cuts[3]), pd.Timestamp(cuts[0], tz="UTC"), cuts[5], pd.Timestamp(cuts[1]),
             cuts[2], cuts[4], cuts[4]]
    assert plan_backtest(mixed, 7, n_folds=2) == plan_backtest(cuts, 7, n_folds=2)


def test_too_few_cutoffs_says_how_many() -> None:
    with pytest.raises(ChurnkitError) as err:
        plan_backtest(weekly(10), 28)
    msg = str(err.value)
    assert "needs 11 cutoffs" in msg and "got 10" in msg and "\n" not in msg
    plan_backtest(weekly(11), 28)


@pytest.mark.parametrize("kwargs", [{"n_folds": 0}, {"n_test": 0}, {"horizon_days": 0}])
def test_bad_arguments(kwargs) -> None:
    args = {"cutoffs": weekly(12), "horizon_days": 7} | kwargs
    with pytest.raises(ChurnkitError, match="must be at least"):
        plan_backtest(**args)


@settings(max_examples=150, deadline=None)
@given(
    offsets=st.sets(st.integers(0, 400), min_size=1, max_size=30),
    h=st.integers(1, 90),
    n_folds=st.integers(1, 4),
    n_test=st.integers(1, 3),
    n_valid=st.integers(1, 3),
)
def test_any_grid_keeps_label_windows_apart(offsets, h, n_folds, n_test, n_valid) -> None:
    cuts = [D0 + dt.timedelta(days=o) for o in offsets]
    try:
        plan = plan_backtest(cuts, h, n_folds=n_folds, n_test=n_test, n_valid=n_valid)
    except ChurnkitError as err:
        assert "needs" in str(err) and f"got {len(cuts)}" in str(err)
        return
    assert len(plan.folds) == n_folds and len(plan.test) == n_test
    assert all(len(f.valid) == n_valid for f in plan.folds)
    assert_sound(plan, h)


@settings(max_examples=100, deadline=None)
@given(n=st.integers(2, 40), step=st.integers(1, 31), h=st.integers(1, 120),
       n_folds=st.integers(1, 4), n_test=st.integers(1, 3))
def test_needed_count_is_exact_on_regular_grids(n, step, h, n_folds, n_test) -> None:
    need = cutoffs_needed(step, h, n_folds, n_test)
    try:
        plan_backtest(weekly(n, step), h, n_folds=n_folds, n_test=n_test)
        ok = True
    except ChurnkitError:
        ok = False
    assert ok == (n >= need)


@pytest.mark.parametrize("tz", [None, "UTC"])
def test_rows_selects_by_cutoff_date(tz) -> None:
    cuts = weekly(3)
    df = pd.DataFrame({"cutoff": pd.to_datetime([cuts[0], cuts[1], cuts[1], cuts[2]]).tz_localize(tz)})
    assert rows(df, [cuts[1]]).tolist() == [False, True, True, False]
    assert rows(df, [str(cuts[0]), cuts[2]]).tolist() == [True, False, False, True]
    with pytest.raises(ChurnkitError, match="no 'when' column"):
        rows(df, cuts, column="when")


def test_plan_to_dict_is_json_ready() -> None:
    d = plan_backtest(weekly(6), 7, n_folds=2).to_dict()
    assert d["test"] == [str(weekly(6)[-1])]
    assert d["folds"][0]["valid"] == [str(weekly(6)[3])]
