"""The effect on retention as the window runs: for each day ``d`` after assignment, the
share of users active at least once within ``d`` days, per arm, and its difference.

Each day's interval is the ordinary one for that day (from :func:`abtest.effects`), not a
band valid for all days at once: the curve shows when the effect appears and whether it
holds, the verdict is the table's.
"""

from __future__ import annotations

from collections.abc import Hashable

import numpy as np
import pandas as pd

from churnkit.campaigns.abtest import effects


def cumulative_effect(rows: pd.DataFrame, control: Hashable, days: int, variant_col: str = "variant") -> pd.DataFrame:
    """Per non-control variant and day ``1..days``: ``control_share``, ``share``, ``effect``,
    ``ci_low``, ``ci_high`` for "active within d days of assignment" (``days_to_active < d``)."""
    out = []
    reached = rows["days_to_active"].to_numpy("float64")
    for d in range(1, days + 1):
        col = f"active_within_{d}d"
        frame = pd.DataFrame({variant_col: rows[variant_col].to_numpy(),
                              col: (np.nan_to_num(reached, nan=np.inf) < d).astype("float64")})
        for e in effects(frame, col, control, variant_col=variant_col, correction="none"):
            out.append({"day": d, "variant": e.variant, "control_share": e.control_mean, "share": e.mean,
                        "effect": e.effect, "ci_low": e.ci_low, "ci_high": e.ci_high})
    return pd.DataFrame(out, columns=["day", "variant", "control_share", "share", "effect", "ci_low", "ci_high"])
