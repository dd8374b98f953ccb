"""CUPAC: one covariate per metric from several pre-assignment signals (Tang et al. 2020).

CUPED adjusts a metric by one covariate. With more than one pre-assignment signal (the
metric's own pre-period value and the churn score at assignment), the best single covariate
is the metric's prediction from them: fitted here by OLS on every assigned user pooled over
the arms, then handed to the existing CUPED machinery as the covariate. The inputs are all
measured before assignment, so the prediction is independent of the arm and the effect stays
unbiased; the fit has a handful of coefficients, so using the experiment's own rows costs
nothing measurable in validity (it is regression adjustment, Lin 2013).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from churnkit.errors import ChurnkitError


def cupac_covariate(rows: pd.DataFrame, metric: str, signals: Sequence[str]) -> np.ndarray:
    """The OLS prediction of ``metric`` from ``signals`` (with an intercept) for every row.

    Missing signal values (a user with no history has no churn score) are filled with the
    signal's mean and flagged by an extra 0/1 column, so those users are predicted too."""
    if not signals:
        raise ChurnkitError(f"CUPAC for {metric!r} needs at least one pre-assignment signal")
    columns = [np.ones(len(rows))]
    for s in signals:
        v = rows[s].to_numpy(dtype="float64", na_value=np.nan)
        missing = ~np.isfinite(v)
        fill = float(v[~missing].mean()) if (~missing).any() else 0.0
        columns.append(np.where(missing, fill, v))
        if missing.any() and not missing.all():
            columns.append(missing.astype("float64"))
    X = np.column_stack(columns)
    y = rows[metric].to_numpy(dtype="float64")
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    return X @ coef
