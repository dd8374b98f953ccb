"""What a trained model outputs, the same for the test report, batch scoring and the service."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def model_outputs(model: Any, X: pd.DataFrame, classifier: bool) -> list[np.ndarray]:
    """``[probability]`` for a classifier; ``[ltv, low, high]`` for an LTV model, its
    interval at the quantiles it was fitted for."""
    if classifier:
        return [np.asarray(model.predict_proba(X), dtype="float64")[:, 1]]
    low, high = model.predict_interval(X, *model.quantiles)
    return [np.asarray(model.predict(X), dtype="float64"), low, high]
