"""An uplift problem's training rows: past randomised campaigns' users, each with point-in-time
features at the day of assignment, the arm, and the outcome in the window after it.

One row per (campaign, user). The features are the training sets' own
(:func:`churnkit.datasets.build.features_at_keys`), at the UTC midnight before
``assigned_ts``: no event of the send day or later is seen. The outcome is the campaign
evaluation's own (:func:`churnkit.campaigns.outcomes.outcomes`) over
``[assigned_ts, assigned_ts + horizon)``, so the model learns exactly the effect
``churnkit campaign evaluate`` measures.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

import ibis.expr.types as ir
import pandas as pd

from churnkit import __version__
from churnkit.campaigns.outcomes import outcomes
from churnkit.config import ProblemConfig
from churnkit.contracts import KEYS, LABEL
from churnkit.datasets.build import CUTOFF_DTYPE, features_at_keys, frame_rows, uninformative
from churnkit.datasets.manifest import Manifest
from churnkit.datasets.span import fingerprint_span
from churnkit.errors import ChurnkitError
from churnkit.features.build import discover_levels

TREATMENT = "treatment"
"""1 for a user in a treatment arm, 0 in the control arm."""
ROW_COLUMNS = ("campaign_id", "variant", "assigned_ts", TREATMENT)
"""What an uplift row carries beside the keys, features and label."""


def uplift_rows(
    events: ir.Table, users: ir.Table | None, assignments: ir.Table, controls: Mapping[str, str],
    problem: ProblemConfig, fp: dict[str, Any],
) -> tuple[pd.DataFrame, Manifest]:
    """The rows of ``problem`` (kind uplift) from the campaigns in ``controls`` (campaign id ->
    its control variant), and their manifest."""
    if problem.kind != "uplift" or problem.uplift is None:
        raise ChurnkitError(f"{problem.name} is a {problem.kind} problem, not uplift")
    outcome = problem.uplift.outcome
    a = assignments.filter(assignments.campaign_id.isin(list(controls)))
    a = a.select("user_id", "campaign_id", "variant", "assigned_ts")  # the problem's horizon, not the table's
    act = problem.activity
    rows = outcomes(events, a, problem.horizon_days, act.include, act.exclude).execute()
    end = pd.Timestamp(fingerprint_span(fp).end).tz_localize("UTC")
    ends = pd.to_datetime(rows["window_end"], utc=True)
    incomplete = rows.loc[ends > end, "campaign_id"].unique()
    if len(incomplete):
        raise ChurnkitError(
            f"{problem.name}: campaign {incomplete[0]} ends its {problem.horizon_days}-day window after the data "
            f"({end.date()}); leave it out (uplift.campaigns) or wait for the data")
    rows["assigned_ts"] = pd.to_datetime(rows["assigned_ts"], utc=True)
    rows["cutoff"] = rows["assigned_ts"].dt.floor("D").astype(CUTOFF_DTYPE)
    rows[TREATMENT] = (rows["variant"].astype(str) != rows["campaign_id"].map(controls)).astype("int8")
    rows[LABEL] = rows[outcome].astype("float64")
    rows["user_id"] = rows["user_id"].astype(str)

    levels = discover_levels(users) if "attributes" in problem.features.families else {}
    ff = features_at_keys(events, users, problem, rows[list(KEYS)], levels)
    feats = frame_rows(ff)
    df = rows[[*KEYS, *ROW_COLUMNS, LABEL]].merge(feats, on=list(KEYS), how="left")
    df = df[[*KEYS, *ROW_COLUMNS, *ff.names, LABEL]].sort_values(["assigned_ts", "campaign_id", "user_id"])
    df = df.reset_index(drop=True)
    dropped = uninformative(df, ff.names)
    if len(df) and len(dropped) == len(ff.names):
        raise ChurnkitError(f"{problem.name}: every feature is constant or null over the {len(df):,} rows")
    per = df.groupby("cutoff")[LABEL].agg(["size", "mean"]).reset_index()
    manifest = Manifest(
        churnkit_version=__version__,
        created_at=dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        problem=problem,
        label={"name": LABEL, "kind": "uplift", "horizon_days": problem.horizon_days},
        keys=KEYS,
        features=[s.to_dict() for s in ff.specs if s.name not in dropped],
        dropped_features=[{"name": n, "reason": why} for n, why in dropped.items()],
        attribute_levels=levels,
        cutoffs=[str(pd.Timestamp(c).date()) for c in per["cutoff"]],
        data=fp | {"end_exclusive": str(fingerprint_span(fp).end)},
        rows=len(df),
        per_cutoff=[{"cutoff": pd.Timestamp(r.cutoff).date().isoformat(), "rows": int(r.size),
                     "label_mean": float(r.mean)} for r in per.itertuples()],
    )
    return df, manifest
