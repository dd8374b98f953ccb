"""Training sets and feature rows at a date, from the one feature frame and eligibility rule.

:func:`build_training_set` (many cutoffs, eligible users, labels) and
:func:`scoring_features` (one as-of date, everyone with activity, eligibility inputs kept)
share :func:`churnkit.features.build.feature_frame` and :func:`eligible`, so a user is
scored on exactly the columns, and judged in or out of a population by exactly the rule,
a model was trained with.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from churnkit import __version__
from churnkit.config import ProblemConfig
from churnkit.contracts import KEYS, LABEL
from churnkit.datasets.cutoffs import resolve_cutoffs
from churnkit.datasets.eligibility import eligible
from churnkit.datasets.labels import attach_labels
from churnkit.datasets.manifest import Manifest
from churnkit.datasets.span import fingerprint, fingerprint_span
from churnkit.errors import ChurnkitError
from churnkit.features.build import (
    ELIGIBILITY_COLUMNS,
    SIGNED_UP,
    FeatureFrame,
    discover_levels,
    feature_frame,
)
from churnkit.features.context import cutoff_table

CUTOFF_DTYPE = "datetime64[us, UTC]"
SINCE_LAST_ACTIVITY, HISTORY_DAYS = ELIGIBILITY_COLUMNS


def _frame(
    events: ir.Table, users: ir.Table | None, problem: ProblemConfig, cutoffs: list[dt.date],
    attribute_levels: dict[str, list[str]] | None,
) -> FeatureFrame:
    return feature_frame(
        events, cutoff_table(cutoffs), users, selection=problem.features, activity=problem.activity,
        attribute_levels=attribute_levels,
    )


def eligible_features(
    events: ir.Table,
    users: ir.Table | None,
    problem: ProblemConfig,
    cutoffs: list[dt.date],
    attribute_levels: dict[str, list[str]] | None,
) -> FeatureFrame:
    """Features of the users eligible at each cutoff (see :func:`eligible`)."""
    ff = _frame(events, users, problem, cutoffs, attribute_levels)
    t = ff.table
    keep = eligible(t[SINCE_LAST_ACTIVITY], t[HISTORY_DAYS], problem) & t[SIGNED_UP]
    ff.table = t.filter(keep).select(*KEYS, *ff.names)
    return ff


def _to_pandas(table: ir.Table, float_columns: list[str], order: list[str]) -> pd.DataFrame:
    """The rows in pandas, floats as float64 with no infinity: a value that overflowed is
    unknown (NaN), so one odd user never stops a model from scoring the others.

    Why not Ibis's ``to_pandas``: it turns every column holding a null into a Python list
    before converting it back (most feature columns have nulls), then the floats were
    copied twice more; at a million users that was seconds and a few GiB. Here the Arrow
    result is written column by column into one float64 block, the frame's own storage."""
    result = table.order_by(order).to_pyarrow()
    floats = set(float_columns)
    names = [n for n in result.column_names if n in floats]
    block = np.empty((len(names), result.num_rows), dtype="float64")
    for row, name in zip(block, names):
        row[:] = pc.cast(result.column(name), pa.float64()).to_numpy(zero_copy_only=False)
        np.copyto(row, np.nan, where=np.isinf(row))
    df = pd.DataFrame(block.T, columns=names, copy=False)
    for i, name in enumerate(n for n in result.column_names if n not in floats):
        df.insert(i, name, result.column(name).to_pandas())
    df = df[result.column_names]
    df["cutoff"] = df["cutoff"].astype(CUTOFF_DTYPE)  # engines differ (DuckDB us, Spark ns)
    return df


def build_training_set(
    events: ir.Table, users: ir.Table | None, problem: ProblemConfig, *, fp: dict[str, Any] | None = None
) -> tuple[pd.DataFrame, Manifest]:
    """The problem's training set over its cutoff grid, and its manifest.

    Features constant or all-null over the rows (:func:`uninformative`) are not model
    features: the manifest lists them under ``dropped_features`` with the reason.

    ``fp``: the events' :func:`fingerprint` when the caller already has it (a full scan).
    """
    fp = fp or fingerprint(events)
    span = fingerprint_span(fp)
    cutoffs = resolve_cutoffs(problem, span)
    levels = discover_levels(users) if "attributes" in problem.features.families else {}
    ff = eligible_features(events, users, problem, cutoffs, levels)
    labelled = attach_labels(ff.table, ff.daily, cutoff_table(cutoffs), problem.kind, problem.horizon_days)
    df = _to_pandas(labelled.select(*KEYS, *ff.names, LABEL), [*ff.names, LABEL], ["cutoff", "user_id"])
    dropped = uninformative(df, ff.names)
    if len(df) and len(dropped) == len(ff.names):
        raise ChurnkitError(
            f"{problem.name}: every feature is constant or null over the {len(df):,} training rows; nothing to learn from"
        )
    # the columns stay in the table (a model trained before they were dropped can still be
    # rescored on the same rows); the manifest's features, the model's inputs, leave them out
    per_cutoff = df.groupby("cutoff")[LABEL].agg(["size", "mean"]).reset_index()
    manifest = Manifest(
        churnkit_version=__version__,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        problem=problem,
        label={"name": LABEL, "kind": problem.kind, "horizon_days": problem.horizon_days},
        keys=KEYS,
        features=[s.to_dict() for s in ff.specs if s.name not in dropped],
        dropped_features=[{"name": n, "reason": why} for n, why in dropped.items()],
        attribute_levels=levels,
        cutoffs=[str(c) for c in cutoffs],
        data=fp | {"end_exclusive": str(span.end)},
        rows=len(df),
        per_cutoff=[
            {"cutoff": pd.Timestamp(r.cutoff).date().isoformat(), "rows": int(r.size), "label_mean": float(r.mean)}
            for r in per_cutoff.itertuples()
        ],
    )
    return df, manifest


def uninformative(df: pd.DataFrame, names: list[str]) -> dict[str, str]:
    """Features with one value on every row (``constant 0``) or no value at all (``all
    null``): nothing a model can split on, so they are left out of the model's features.

    A column holding one value and some nulls stays: missing-or-not is information.
    """
    out: dict[str, str] = {}
    if not len(df):
        return out
    for name in names:
        col = df[name]
        if col.isna().all():
            out[name] = "all null"
        elif col.notna().all() and col.nunique() == 1:
            out[name] = f"constant {col.iloc[0]:g}"
    return out


def _check_names(ff: FeatureFrame, manifest: Manifest) -> list[str]:
    """The manifest's features among the frame's, or a one-line error naming the difference."""
    kept = manifest.kept(ff.names)
    if kept is None:
        known = {*manifest.feature_names, *(d.name for d in manifest.dropped_features)}
        missing = sorted(known - set(ff.names))
        extra = sorted(set(ff.names) - known)
        raise ChurnkitError(f"features differ from the manifest: missing {missing}, extra {extra}")
    return kept


def features_as_of(
    events: ir.Table, users: ir.Table | None, manifest: Manifest, as_of: dt.date
) -> pd.DataFrame:
    """Features at one cutoff for the users eligible then, as the training set holds them."""
    ff = eligible_features(events, users, manifest.problem, [as_of], manifest.attribute_levels)
    names = _check_names(ff, manifest)
    return _to_pandas(ff.table.select(*KEYS, *names), names, ["user_id"])


def features_at_keys(
    events: ir.Table, users: ir.Table | None, problem: ProblemConfig, keys: pd.DataFrame,
    attribute_levels: dict[str, list[str]] | None,
) -> FeatureFrame:
    """Features of given ``(user_id, cutoff)`` pairs (e.g. the users of a campaign at the day
    it was sent), from the one feature frame: events before each cutoff only. Users with no
    event before their cutoff have no row (the caller's left join leaves their features
    null, which the models read as unknown)."""
    cutoffs = sorted({pd.Timestamp(c).date() for c in keys["cutoff"]})
    ff = _frame(events, users, problem, cutoffs, attribute_levels)
    wanted = ibis.memtable(keys[["user_id"]].drop_duplicates().astype({"user_id": "str"}))
    t = ff.table
    ff.table = t.semi_join(wanted, t.user_id == wanted.user_id).select(*KEYS, *ff.names)
    return ff


def frame_rows(ff: FeatureFrame) -> pd.DataFrame:
    """A feature frame's rows in pandas, as the training set holds them (float64, no inf)."""
    return _to_pandas(ff.table, ff.names, ["cutoff", "user_id"])


def scoring_features(
    events: ir.Table, users: ir.Table | None, manifest: Manifest, as_of: dt.date
) -> pd.DataFrame:
    """Features at ``as_of`` for everyone who signed up and has any activity before it,
    with the eligibility inputs (:data:`ELIGIBILITY_COLUMNS`) kept beside the features, so
    each model's population can be told with :func:`eligible`."""
    ff = _frame(events, users, manifest.problem, [as_of], manifest.attribute_levels)
    names = _check_names(ff, manifest)
    t = ff.table
    t = t.filter(t[SIGNED_UP] & t[SINCE_LAST_ACTIVITY].notnull())
    extra = [c for c in ELIGIBILITY_COLUMNS if c not in names]
    return _to_pandas(t.select(*KEYS, *names, *extra), [*names, *extra], ["user_id"])
