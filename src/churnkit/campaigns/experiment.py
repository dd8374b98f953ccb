"""A randomised experiment handed over as one table: one row per customer, a variant column,
outcome columns and pre-period covariates (how teams often export a finished test, and how
public ones such as Hillstrom's e-mail test are published).

This module holds the pure steps between such a table and the same tidy results the
assignment path produces (:func:`churnkit.campaigns.abtest.results_table`):

- :func:`check_table`: the table's contract, one readable error per broken rule. Rows are
  never dropped: an assigned customer without an outcome is an error, not a row to skip
  (the comparison is intention to treat).
- :func:`cuped_covariates`: one CUPED covariate per metric. tea-tasting's CUPED takes one
  covariate; with several, the metric is regressed (OLS with an intercept) on all of them
  over the pooled arms and the fitted value is the covariate (CUPAC, Tang et al. 2020).
  That is valid because the covariates are measured before assignment: any function of
  them is independent of the arm, so the effect stays unbiased and the variance falls by
  about the regression's R^2.
- :func:`uplift_features`, :func:`split`, :func:`evaluate_uplift`: per treatment arm, T-, X-
  and DR-learners (:mod:`churnkit.campaigns.uplift`) fitted on a train split, the one with
  the best Qini coefficient on a validation split refitted on both, and judged once on a
  held-out test split (Qini and AUUC with bootstrap intervals, uplift at 10% and 20%).

Nothing here reads files.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from churnkit.campaigns.uplift import LEARNERS, UpliftModel, qini_curve
from churnkit.campaigns.uplift_fit import choose_learner, held_out_metrics
from churnkit.errors import ChurnkitError

SPLIT_SHARES: tuple[float, float, float] = (0.5, 0.25, 0.25)
"""Train, validation, test: the test quarter is touched once, after the learner is chosen."""
MAX_LEVELS = 100
"""A text column with more distinct values than this is not one-hot encoded (an id or free
text, not a category): name the features explicitly instead."""


# --------------------------------------------------------------------------- contract


def check_table(data: pd.DataFrame, variant_col: str, control: str, metrics: Sequence[str],
                covariates: Sequence[str] = ()) -> list[str]:
    """Check a per-customer experiment table; returns its variants, control first.

    Every rule fails with one line that names the column and, where it helps, a value:
    the variant column and the control must exist, every metric and covariate must be a
    numeric column with no missing or infinite value (reported with a count and the first
    data row, counted from 1), and every arm must have customers.
    """
    if len(data) == 0:
        raise ChurnkitError("the experiment table has no rows")
    columns = ", ".join(map(str, data.columns))
    if variant_col not in data.columns:
        raise ChurnkitError(f"variant column {variant_col!r} not in the table (columns: {columns})")
    named = [*metrics, *covariates]
    if not metrics:
        raise ChurnkitError("name at least one outcome metric column")
    twice = sorted({c for c in named if named.count(c) > 1})
    if twice or variant_col in named:
        raise ChurnkitError(f"a column is used twice (metrics, covariates and the variant column "
                            f"must differ): {', '.join(twice or [variant_col])}")
    for kind, names in (("metric", metrics), ("covariate", covariates)):
        for col in names:
            if col not in data.columns:
                raise ChurnkitError(f"{kind} column {col!r} not in the table (columns: {columns})")
    labels = data[variant_col]
    missing = labels.isna() | (labels.astype("string").str.strip() == "")
    if missing.any():
        raise ChurnkitError(f"{int(missing.sum())} rows have no {variant_col!r} (first at data row "
                            f"{_first(missing)}); every row must be an assigned customer")
    present = labels.astype(str)
    variants = sorted(present.unique())
    empty = ([str(c) for c in labels.cat.categories if str(c) not in variants]
             if isinstance(labels.dtype, pd.CategoricalDtype) else [])
    if empty:
        raise ChurnkitError(f"arm(s) with no customers: {', '.join(map(repr, empty))}")
    if control not in variants:
        raise ChurnkitError(f"control {control!r} is not a value of {variant_col!r} "
                            f"(variants: {', '.join(map(repr, variants))})")
    if len(variants) < 2:
        raise ChurnkitError(f"only the control arm {control!r} has customers: nothing to compare")
    for kind, names in (("metric", metrics), ("covariate", covariates)):
        for col in names:
            _check_numeric(data[col], kind)
    return [control, *[v for v in variants if v != control]]


def _check_numeric(series: pd.Series, kind: str) -> None:
    col = series.name
    if not (pd.api.types.is_numeric_dtype(series) or pd.api.types.is_bool_dtype(series)):
        coerced = pd.to_numeric(series, errors="coerce")
        bad = coerced.isna() & series.notna()
        if bad.any():
            example = series[bad].iloc[0]
            raise ChurnkitError(f"{kind} column {col!r} is not numeric: {int(bad.sum())} values such "
                                f"as {example!r} (data row {_first(bad)})")
        series = coerced
    values = series.to_numpy(dtype="float64", na_value=np.nan)
    bad = pd.Series(~np.isfinite(values), index=series.index)
    if bad.any():
        raise ChurnkitError(f"{kind} column {col!r} has {int(bad.sum())} missing or infinite values "
                            f"(first at data row {_first(bad)}); rejected, none dropped: every "
                            "customer needs a value (0 when they did nothing)")


def _first(mask: pd.Series) -> int:
    return int(np.flatnonzero(mask.to_numpy())[0]) + 1


def numeric(data: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """The checked columns as float64 (a CSV may hold 0/1 as text, a Parquet as booleans)."""
    out = data.copy()
    for col in columns:
        out[col] = pd.to_numeric(out[col]).astype("float64")
    return out


# --------------------------------------------------------------------------- CUPED


def cuped_covariates(data: pd.DataFrame, metrics: Sequence[str],
                     covariates: Sequence[str]) -> tuple[pd.DataFrame, dict[str, str]]:
    """The CUPED covariate of each metric: the one covariate given, else the metric's OLS
    fit on all of them over the pooled arms (a new column named ``metric~a+b``).

    Constant covariates carry no information and are left out; a metric left with none
    is analysed without CUPED. Returns the data (with any fitted columns added) and the
    metric -> covariate column mapping for :func:`~churnkit.campaigns.abtest.results_table`.
    """
    useful = [c for c in covariates if data[c].std() > 0]
    if not useful:
        return data, {}
    if len(useful) == 1:
        return data, dict.fromkeys(metrics, useful[0])
    X = np.column_stack([np.ones(len(data)), data[useful].to_numpy("float64")])
    out, mapping = data.copy(), {}
    for m in metrics:
        beta, *_ = np.linalg.lstsq(X, data[m].to_numpy("float64"), rcond=None)
        name = f"{m}~{'+'.join(useful)}"
        out[name] = X @ beta
        mapping[m] = name
    return out, mapping


# --------------------------------------------------------------------------- uplift


def identifiers(data: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Columns that name a customer (integer or text, a different value on every row): no
    model can learn from them, so they are not features."""
    out = []
    for col in columns:
        s = data[col]
        kind = pd.api.types.is_integer_dtype(s) or not pd.api.types.is_numeric_dtype(s)
        if kind and not pd.api.types.is_bool_dtype(s) and len(s) > 1 and s.nunique() == len(s):
            out.append(col)
    return out


def uplift_features(data: pd.DataFrame, columns: Sequence[str]) -> pd.DataFrame:
    """A float feature matrix: numeric and boolean columns as they are (missing stays NaN,
    which LightGBM handles), text and categorical columns one-hot encoded (``col=value``)."""
    parts = []
    for col in columns:
        s = data[col]
        if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
            parts.append(s.astype("float64").rename(col).to_frame())
            continue
        levels = s.nunique()
        if levels > MAX_LEVELS:
            raise ChurnkitError(f"feature column {col!r} has {levels:,} distinct text values: not a "
                                "category to one-hot encode (name the features with --features)")
        parts.append(pd.get_dummies(s.astype("string"), prefix=col, prefix_sep="=", dtype="float64"))
    if not parts:
        raise ChurnkitError("no feature columns left for the uplift model (every column is the "
                            "variant, an outcome or an identifier)")
    return pd.concat(parts, axis=1).reset_index(drop=True)


def split(variants: pd.Series, seed: int = 0,
          shares: tuple[float, float, float] = SPLIT_SHARES) -> np.ndarray:
    """``train`` / ``validation`` / ``test`` per row, at random within each arm (so every
    split keeps the arms' proportions), reproducible from ``seed``."""
    rng = np.random.default_rng(seed)
    labels = np.empty(len(variants), dtype=object)
    codes = pd.factorize(variants.astype(str), sort=True)[0]
    total = sum(shares)
    for code in np.unique(codes):
        idx = rng.permutation(np.flatnonzero(codes == code))
        n_train = round(len(idx) * shares[0] / total)
        n_val = round(len(idx) * shares[1] / total)
        labels[idx[:n_train]] = "train"
        labels[idx[n_train:n_train + n_val]] = "validation"
        labels[idx[n_train + n_val:]] = "test"
    return labels


@dataclass(frozen=True)
class UpliftResult:
    """One treatment arm's uplift model, judged on the held-out test split."""

    summary: dict[str, Any]
    curve: pd.DataFrame
    """:func:`~churnkit.campaigns.uplift.qini_curve` on the test split, plus ``variant`` and
    ``learner``."""


def evaluate_uplift(features: pd.DataFrame, variants: pd.Series, y: pd.Series, control: str,
                    treated: Sequence[Hashable], splits: np.ndarray, *, seed: int = 0,
                    n_boot: int = 200) -> list[UpliftResult]:
    """For each treated arm against control: choose among :data:`LEARNERS` by the Qini
    coefficient on validation, refit on train + validation, report on test."""
    outcome = "binary" if np.isin(y.to_numpy("float64"), (0.0, 1.0)).all() else "continuous"
    X, v, yy = features.astype("float64"), variants.astype(str).to_numpy(), y.to_numpy("float64")
    results = []

    def make(name: str) -> UpliftModel:
        return UpliftModel(learner=name, outcome=outcome, random_state=seed)

    for arm in treated:
        rows = (v == str(arm)) | (v == control)
        t = (v == str(arm)).astype(np.int8)

        def part(*names: str, rows: np.ndarray = rows, t: np.ndarray = t) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
            mask = rows & np.isin(splits, names)
            return X[mask], t[mask], yy[mask]

        best, validation = choose_learner(list(LEARNERS), make, part("train"), part("validation"))
        model = make(best).fit(*part("train", "validation"))
        Xt, tt, yt = part("test")
        s = model.predict(Xt)
        m = held_out_metrics(s, tt, yt, n_boot, seed)
        curve = qini_curve(s, tt, yt).assign(variant=str(arm), learner=best.upper())
        summary = {
            "variant": str(arm), "metric": str(y.name), "outcome": outcome, "learner": best.upper(),
            "validation_qini": {k.upper(): v for k, v in validation.items()},
            "n_train": len(part("train")[1]), "n_validation": len(part("validation")[1]), "n_test": len(tt),
            "test_effect": m["average_effect"], "bootstrap": n_boot,
            **{k: m[k] for k in ("qini", "qini_low", "qini_high", "auuc", "auuc_low", "auuc_high",
                                 "uplift_at_10", "uplift_at_20")},
        }
        results.append(UpliftResult(summary, curve))
    return results


