"""Whom to contact under a budget: the users a contact changes most, net of what it costs.

Each candidate has an estimated effect of being contacted (``uplift``, from an uplift
model), a ``value`` per unit of that effect (1 for a revenue effect; what one more retained
or converted user is worth otherwise) and a ``contact_cost``. Then

- ``expected_incremental_value = uplift x value`` and ``net_value = that - contact_cost``;
- users with a negative estimated effect are left out ("sleeping dogs": a contact puts them
  off), and so are users whose contact is not worth its cost (``net_value <= 0``);
- the rest are ranked by ``net_value`` and taken until the budget (contacts, or money
  spent on contacts) is used.

Ranking by churn risk instead is what most tools do, and it is wrong twice: the riskiest
users are often beyond saving (a contact changes little) and some are put off by it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnkit.errors import ChurnkitError

UPLIFT, VALUE, COST = "uplift", "value", "contact_cost"
EXPECTED, NET = "expected_incremental_value", "net_value"
LIST_COLUMNS = ("rank", "user_id", UPLIFT, VALUE, EXPECTED, COST, NET, "cumulative_cost")


@dataclass(frozen=True)
class Budget:
    """At most ``contacts`` users, and at most ``money`` spent on contacts (either or both)."""

    contacts: int | None = None
    money: float | None = None

    def __post_init__(self) -> None:
        if self.contacts is None and self.money is None:
            raise ChurnkitError("a budget needs a number of contacts or an amount of money (or both)")
        if self.contacts is not None and self.contacts < 1:
            raise ChurnkitError(f"the contact budget must be at least 1, got {self.contacts}")
        if self.money is not None and not self.money > 0:
            raise ChurnkitError(f"the money budget must be positive, got {self.money}")

    def describe(self) -> str:
        parts = ([f"{self.contacts:,} contacts"] if self.contacts is not None else []) + \
            ([f"{self.money:,.2f} to spend"] if self.money is not None else [])
        return " and ".join(parts)


def target(candidates: pd.DataFrame, budget: Budget) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The target list (ranked, :data:`LIST_COLUMNS` first, other columns kept) and what was
    left out and why. ``candidates``: ``user_id``, ``uplift``, ``value``, ``contact_cost``."""
    missing = [c for c in ("user_id", UPLIFT, VALUE, COST) if c not in candidates.columns]
    if missing:
        raise ChurnkitError(f"targeting: candidates lack {missing}")
    df = candidates.copy()
    bad = ~np.isfinite(df[[UPLIFT, VALUE, COST]].to_numpy("float64")).all(axis=1)
    if bad.any():
        raise ChurnkitError(f"targeting: {int(bad.sum())} candidate(s) have no estimate, value or cost "
                            f"(e.g. user {df.loc[bad, 'user_id'].iloc[0]})")
    if (df[COST] < 0).any():
        raise ChurnkitError("targeting: a contact cost is negative")
    df[EXPECTED] = df[UPLIFT] * df[VALUE]
    df[NET] = df[EXPECTED] - df[COST]
    harmed = df[UPLIFT] < 0
    not_worth = ~harmed & (df[NET] <= 0)
    worth = df[~harmed & ~not_worth].sort_values([NET, "user_id"], ascending=[False, True], kind="mergesort")
    spent = worth[COST].cumsum()
    keep = np.ones(len(worth), dtype=bool)
    if budget.money is not None:
        keep &= (spent <= budget.money + 1e-9).to_numpy()
    if budget.contacts is not None:
        keep &= np.arange(len(worth)) < budget.contacts
    chosen = worth[keep].copy()
    chosen.insert(0, "rank", np.arange(1, len(chosen) + 1))
    chosen["cumulative_cost"] = chosen[COST].cumsum()
    chosen = chosen[[*LIST_COLUMNS, *[c for c in chosen.columns if c not in LIST_COLUMNS]]].reset_index(drop=True)
    summary = {
        "candidates": len(df),
        "negative_effect": int(harmed.sum()),
        "not_worth_the_cost": int(not_worth.sum()),
        "worth_contacting": len(worth),
        "chosen": len(chosen),
        "budget": budget.describe(),
        "spend": float(chosen[COST].sum()),
        "expected_incremental_value": float(chosen[EXPECTED].sum()),
        "expected_net_value": float(chosen[NET].sum()),
        "left_by_the_budget": int(len(worth) - len(chosen)),
    }
    return chosen, summary
