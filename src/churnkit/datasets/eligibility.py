"""Who a model is about: the one definition of an eligible user at a cutoff.

Eligible: signed up before the cutoff, active within the problem's look-back, and with at
least ``min_history_days`` since the first active day. Training keeps only eligible rows;
scoring scores everyone with any activity and flags who is eligible for each model
(``<role>_in_population``), with the same function.
"""

from __future__ import annotations

from typing import Any, TypeVar

from churnkit.config import ProblemConfig

Column = TypeVar("Column")


def eligible(since_last_activity: Column, history_days: Any, problem: ProblemConfig) -> Column:
    """Active within the look-back and with enough history; a missing value is not eligible.

    The inputs are the features ``days_since_last_activity`` and ``days_since_first_activity``
    (see ``features.build.ELIGIBILITY_COLUMNS``), as Ibis columns or numpy/pandas values:
    the comparison reads the same on both (null or NaN compares false). Activity within
    the last L days before a midnight cutoff is exactly a last activity at most L days old.
    """
    keep = since_last_activity <= problem.lookback_days
    if problem.min_history_days > 0:
        keep = keep & (history_days >= problem.min_history_days)
    return keep
