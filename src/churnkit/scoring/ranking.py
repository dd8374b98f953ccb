"""The risk ranking: who is first in a risk list, in one place.

The risk list shows users in this order, and scoring gives reasons to the first of them
(``scoring.reasons_for: top``); both call :func:`risk_order`, so "the rows a list shows
first" and "the rows that got reasons" cannot drift apart.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from churnkit.contracts import ROLE_OUTPUTS, VALUE_AT_RISK
from churnkit.errors import ChurnkitError

CHURN = ROLE_OUTPUTS["churn"]["score"]


def risk_ranking(columns: Iterable[str]) -> str:
    """What the risk list ranks by: value at risk, or churn probability without an LTV model."""
    cols = set(columns)
    if CHURN not in cols:
        raise ChurnkitError(
            f"the risk list ranks users by churn risk and these scores have no {CHURN}: set scoring.churn to a"
            " churn problem with a champion and score again"
        )
    return VALUE_AT_RISK if VALUE_AT_RISK in cols else CHURN


def risk_order(value: np.ndarray, user_ids: np.ndarray) -> np.ndarray:
    """Row positions largest ``value`` first, ties by ``user_id`` ascending, missing values
    last (a stable sort: the risk list's order)."""
    frame = pd.DataFrame({"value": np.asarray(value, dtype="float64"), "user_id": user_ids})
    return frame.sort_values(["value", "user_id"], ascending=[False, True], kind="stable").index.to_numpy()


def first_ranked(value: np.ndarray, user_ids: np.ndarray, eligible: np.ndarray, n: int) -> np.ndarray:
    """A mask of the first ``n`` ``eligible`` rows in the risk order."""
    rows = np.flatnonzero(eligible)
    pick = np.zeros(len(value), bool)
    if n > 0 and len(rows):
        order = risk_order(np.asarray(value)[rows], np.asarray(user_ids)[rows])
        pick[rows[order[:n]]] = True
    return pick
