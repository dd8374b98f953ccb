"""Input checks shared by every estimator: the right feature columns, numeric, finite.

A model scores rows only when they carry exactly the features it was trained on; a
renamed or missing feature would otherwise be silently read as all-missing by LightGBM.
NaN stays allowed (LightGBM routes missing values), infinities do not.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from churnkit.errors import ChurnkitError

SHOW = 3
"""How many names an error message lists before summarising with a count."""


def _names(names: Sequence[str]) -> str:
    head = ", ".join(repr(str(n)) for n in names[:SHOW])
    more = len(names) - SHOW
    return f"{len(names)} ({head}{f', ... +{more} more' if more > 0 else ''})"


def check_features(
    X: pd.DataFrame, expected_names: Sequence[str], where: str = "features"
) -> pd.DataFrame:
    """``X[expected_names]`` as float64, or a one-line ChurnkitError saying what is wrong.

    Checked in order: a DataFrame with unique column names; missing and extra columns;
    non-numeric columns; infinite values. ``where`` prefixes the message (e.g. "predict").
    """
    if not isinstance(X, pd.DataFrame):
        raise ChurnkitError(
            f"{where}: expected a DataFrame with named feature columns, got {type(X).__name__}"
        )
    cols = [str(c) for c in X.columns]
    if len(set(cols)) != len(cols):
        seen: set[str] = set()
        dup = sorted({c for c in cols if c in seen or seen.add(c)})
        raise ChurnkitError(f"{where}: duplicate columns {_names(dup)}")
    expected = [str(n) for n in expected_names]
    if cols != expected:
        have = set(cols)
        want = set(expected)
        missing = [n for n in expected if n not in have]
        extra = [c for c in cols if c not in want]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {_names(missing)}")
            if extra:
                parts.append(f"unexpected {_names(extra)}")
            raise ChurnkitError(
                f"{where}: feature columns differ from the model's {len(expected)}: " + "; ".join(parts)
            )
        X = X.set_axis(cols, axis=1)[expected]
    # one pass over the dtypes (per-column X[c] costs ~0.1 ms each: too much for one row)
    dtypes = dict(zip(expected, X.dtypes))
    plain = all(d == np.float64 for d in dtypes.values())
    bad = [] if plain else [c for c in expected if not _numeric(dtypes[c])]
    if bad:
        kinds = ", ".join(f"{c!r}: {dtypes[c]}" for c in bad[:SHOW])
        more = f", ... +{len(bad) - SHOW} more" if len(bad) > SHOW else ""
        raise ChurnkitError(
            f"{where}: {len(bad)} non-numeric feature column(s) ({kinds}{more}); features must be numbers"
        )
    values = X.to_numpy(dtype="float64") if plain else X.to_numpy(dtype="float64", na_value=np.nan)
    out = pd.DataFrame(values, columns=expected, index=X.index, copy=False)
    inf = np.isinf(values)
    if inf.any():
        counts = inf.sum(axis=0)
        cols_inf = [(expected[i], int(counts[i])) for i in np.flatnonzero(counts)]
        shown = ", ".join(f"{c!r} ({n} rows)" for c, n in cols_inf[:SHOW])
        more = f", ... +{len(cols_inf) - SHOW} more columns" if len(cols_inf) > SHOW else ""
        raise ChurnkitError(
            f"{where}: infinite values in {len(cols_inf)} feature column(s): {shown}{more}; "
            "use NaN for unknown values"
        )
    return out


def _numeric(dtype: object) -> bool:
    """Numbers and booleans (incl. pandas nullable dtypes); not strings, dates, categories."""
    if isinstance(dtype, pd.CategoricalDtype):
        return False
    return pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype)


def check_binary_target(y: object, where: str = "label") -> np.ndarray:
    """A 0/1 label as float64 with both classes present; one-line error otherwise."""
    try:
        if isinstance(y, pd.Series | pd.Index):
            arr = y.to_numpy(dtype="float64", na_value=np.nan)
        else:
            arr = np.asarray(y, dtype="float64")
    except (TypeError, ValueError):
        raise ChurnkitError(f"{where}: labels must be the numbers 0 and 1") from None
    if arr.ndim != 1:
        raise ChurnkitError(f"{where}: expected one label column, got shape {arr.shape}")
    if np.isnan(arr).any():
        raise ChurnkitError(f"{where}: {int(np.isnan(arr).sum())} missing label value(s)")
    values = np.unique(arr)
    if not np.isin(values, [0.0, 1.0]).all():
        shown = ", ".join(repr(float(v)) for v in values[~np.isin(values, [0.0, 1.0])][:SHOW])
        raise ChurnkitError(f"{where}: a binary label must be 0 or 1, found {shown}")
    if len(values) < 2:
        raise ChurnkitError(
            f"{where}: all {len(arr)} labels are {int(values[0]) if len(values) else '-'}; "
            "a classifier needs both outcomes"
        )
    return arr
