"""decide_promotion: the pure rule that decides whether a challenger replaces the champion."""

from __future__ import annotations

import math

import pytest

from churnkit.training.promotion import decide_promotion


def test_first_model_becomes_champion() -> None:
    d = decide_promotion({"roc_auc": 0.7}, None, "roc_auc", "maximize")
    assert d.promote and "no champion yet" in d.reason
    assert d.table == [{"metric": "roc_auc", "challenger": 0.7, "champion": None, "delta": None}]


@pytest.mark.parametrize(
    ("new", "old", "direction", "expected"),
    [
        (0.80, 0.75, "maximize", True),
        (0.70, 0.75, "maximize", False),
        (0.75, 0.75, "maximize", False),  # a tie keeps the champion
        (0.20, 0.25, "minimize", True),
        (0.30, 0.25, "minimize", False),
    ],
)
def test_beats_or_loses(new: float, old: float, direction, expected: bool) -> None:
    d = decide_promotion({"m": new}, {"m": old}, "m", direction)
    assert d.promote is expected
    assert d.table[0]["delta"] == pytest.approx(new - old)


def test_min_delta_must_be_exceeded() -> None:
    assert not decide_promotion({"m": 0.76}, {"m": 0.75}, "m", "maximize", min_delta=0.02).promote
    d = decide_promotion({"m": 0.78}, {"m": 0.75}, "m", "maximize", min_delta=0.02)
    assert d.promote
    d = decide_promotion({"m": 0.20}, {"m": 0.25}, "m", "minimize", min_delta=0.1)
    assert not d.promote and "by more than 0.1" in d.reason


def test_force_promotes_and_says_what_the_rule_said() -> None:
    d = decide_promotion({"m": 0.5}, {"m": 0.9}, "m", "maximize", force=True)
    assert d.promote
    assert d.reason.startswith("forced (") and "does not beat" in d.reason


@pytest.mark.parametrize("bad", [math.nan, math.inf, None, "n/a"])
def test_challenger_without_a_usable_metric_is_not_promoted(bad) -> None:
    d = decide_promotion({"m": bad}, {"m": 0.7}, "m", "maximize")
    assert not d.promote and "challenger has no finite m" in d.reason
    assert not decide_promotion({"other": 1.0}, None, "m", "maximize").promote


def test_champion_that_cannot_be_compared_needs_force() -> None:
    d = decide_promotion({"m": 0.7}, {}, "m", "maximize")
    assert not d.promote and "use force" in d.reason
    assert decide_promotion({"m": 0.7}, {}, "m", "maximize", force=True).promote


def test_table_lists_every_metric_of_both_sides() -> None:
    d = decide_promotion(
        {"roc_auc": 0.8, "brier": 0.1}, {"roc_auc": 0.7, "pr_auc": 0.3}, "roc_auc", "maximize"
    )
    rows = {r["metric"]: r for r in d.table}
    assert list(rows) == ["roc_auc", "brier", "pr_auc"]
    assert rows["brier"]["champion"] is None and rows["pr_auc"]["challenger"] is None
    text = d.as_text()
    assert "PROMOTE" in text and "roc_auc" in text and "-" in text


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="direction"):
        decide_promotion({"m": 1.0}, None, "m", "up")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="min_delta"):
        decide_promotion({"m": 1.0}, None, "m", "maximize", min_delta=-1)
