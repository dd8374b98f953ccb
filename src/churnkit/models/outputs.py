"""What a trained model outputs, the same for the test report, batch scoring and the service.

Parts are named as in :data:`churnkit.contracts.OUTPUT_PARTS`: ``score`` (a probability, or
the expected revenue) and, for revenue, ``low``/``high`` (the interval at the quantiles the
model was fitted for). Each consumer names the parts its own way from that one mapping.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from churnkit.contracts import CLASSIFIER_KINDS, OUTPUT_PARTS


def model_outputs(model: Any, X: pd.DataFrame, kind: str) -> dict[str, np.ndarray]:
    """The model's outputs for ``X``, by part (see :data:`OUTPUT_PARTS`)."""
    if kind in CLASSIFIER_KINDS:
        return {"score": np.asarray(model.predict_proba(X), dtype="float64")[:, 1]}
    low, high = model.predict_interval(X, *model.quantiles)
    out = {"score": np.asarray(model.predict(X), dtype="float64"), "low": low, "high": high}
    assert tuple(out) == OUTPUT_PARTS[kind]
    return out


def matrix_outputs(model: Any, A: np.ndarray, names: list[str], kind: str) -> dict[str, np.ndarray]:
    """:func:`model_outputs` for a float64 matrix whose columns are ``names``, the model's
    features in order, checked by the caller (numbers, finite or NaN).

    Why: a frame per call and the checks and scikit-learn wrappers around each booster cost
    more than scoring one row. Models with an ``outputs_matrix`` method answer from the
    matrix (the same booster calls and arithmetic, so the same values); any other model, or
    one whose method returns None, gets a frame and :func:`model_outputs`.
    """
    fast = getattr(model, "outputs_matrix", None)
    out = fast(A) if fast is not None else None
    if out is None:
        return model_outputs(model, pd.DataFrame(A, columns=names), kind)
    assert tuple(out) == OUTPUT_PARTS[kind]
    return out
