"""LightGBM parameters and contributions: deterministic defaults, user overrides by
canonical name (:func:`churnkit.config.canonical_params`), threads by rows, TreeSHAP."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd

from churnkit.config import canonical_params
from churnkit.errors import ChurnkitError

BASE_PARAMS: dict[str, Any] = {
    "verbosity": -1,
    "deterministic": True,
    "force_row_wise": True,
}
"""Reproducible builds: same data, seed and thread count give the same trees."""

DEFAULT_TREE_PARAMS: dict[str, Any] = {
    "learning_rate": 0.05,
    "num_leaves": 31,
    "min_data_in_leaf": 50,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
}
"""Conservative starting point for tabular behaviour data of 10^3-10^6 rows."""

RESERVED: dict[str, str] = {
    "num_iterations": "set n_estimators on the estimator instead",
    "early_stopping_round": "set early_stopping_rounds on the estimator instead",
    "seed": "set random_state (or --seed) instead",
    "num_threads": "set n_jobs instead",
}
"""Parameters owned by the estimator, so there is one place that sets them."""


ROWS_PER_THREAD = 100_000
"""Auto threading: one OpenMP thread per this many rows. On ~15k rows x 95 features a
fit took 2.7 s on one thread and 41 s on all threads of a busy 2-core machine (OpenMP
threads spin while they wait), so small sets stay single-threaded."""


def resolve_threads(n_jobs: int | None, n_rows: int | None = None) -> int:
    """LightGBM ``num_threads``: None = auto by rows, -1 (any negative) = all cores (0)."""
    if n_jobs is None:
        wanted = max(1, (n_rows or 0) // ROWS_PER_THREAD)
        return 1 if wanted == 1 else int(min(os.cpu_count() or 1, wanted))  # cpu_count costs ~40 us
    return 0 if n_jobs < 0 else max(1, int(n_jobs))


def lgbm_params(
    objective: str,
    user_params: Mapping[str, Any] | None = None,
    *,
    seed: int = 0,
    n_jobs: int | None = None,
    n_rows: int | None = None,
    where: str = "model.params",
) -> dict[str, Any]:
    """Parameters for ``lightgbm.train``: base, objective, defaults, then the user's.

    Threads follow :func:`resolve_threads`. Results are bit-identical for the same data,
    seed and thread count.
    """
    user = canonical_params(user_params, where)
    for key, hint in RESERVED.items():
        if key in user:
            raise ChurnkitError(f"{where}: do not set '{key}' in LightGBM params; {hint}")
    params = {**BASE_PARAMS, "objective": objective, **DEFAULT_TREE_PARAMS, **user}
    params["seed"] = int(seed)
    params["num_threads"] = resolve_threads(n_jobs, n_rows)
    return params


SKLEARN_NAMES: dict[str, str] = {
    "min_data_in_leaf": "min_child_samples",
    "bagging_fraction": "subsample",
    "bagging_freq": "subsample_freq",
    "feature_fraction": "colsample_bytree",
    "lambda_l1": "reg_alpha",
    "lambda_l2": "reg_lambda",
    "min_sum_hessian_in_leaf": "min_child_weight",
    "min_gain_to_split": "min_split_gain",
    "bin_construct_sample_cnt": "subsample_for_bin",
    "seed": "random_state",
    "num_threads": "n_jobs",
}
"""Canonical LightGBM names that its scikit-learn estimators own under their own names."""


def sklearn_params(params: Mapping[str, Any]) -> dict[str, Any]:
    """:func:`lgbm_params` output as keyword arguments of LightGBM's scikit-learn estimators.

    Those estimators set their own names (``subsample``, ``n_jobs`` ...) on top of any alias
    passed beside them, so a canonical ``bagging_fraction`` next to the default ``subsample``
    would leave two aliases and LightGBM would use one. Without ``objective``: each
    estimator sets its own.
    """
    out = {SKLEARN_NAMES.get(k, k): v for k, v in params.items() if k != "objective"}
    if out.get("n_jobs") == 0:
        out["n_jobs"] = -1  # LightGBM's "all cores" is 0; its scikit-learn API spells it -1
    return out


def shap_contributions(booster_or_model: Any, X: pd.DataFrame) -> pd.DataFrame:
    """Per-feature contributions in the model's raw space (log-odds for a classifier).

    LightGBM's built-in TreeSHAP (``pred_contrib=True``) gives the same values as
    ``shap.TreeExplainer`` (a test checks it) without the dependency at scoring time; the
    last column, ``bias``, is the expected raw score.
    """
    booster = _booster(booster_or_model)
    names = booster.feature_name()
    missing = [n for n in names if n not in X.columns]
    if missing:
        raise ChurnkitError(f"contributions: input lacks model features {missing[:5]}")
    raw = np.asarray(booster.predict(X[names].to_numpy(dtype="float64"), pred_contrib=True))
    if raw.ndim != 2 or raw.shape[1] != len(names) + 1:
        raise ValueError(f"expected one output per row (binary or regression model), got shape {raw.shape}")
    return pd.DataFrame(raw, columns=[*names, "bias"], index=X.index)


def _booster(model: Any) -> lgb.Booster:
    for candidate in (model, getattr(model, "booster_", None), getattr(model, "model_", None)):
        if isinstance(candidate, lgb.Booster):
            return candidate
        inner = getattr(candidate, "booster_", None)
        if isinstance(inner, lgb.Booster):
            return inner
    raise TypeError(f"not a LightGBM booster or fitted LightGBM model: {type(model).__name__}")
