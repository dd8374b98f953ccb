"""``churnkit campaign evaluate``: each campaign's A/B results, written and printed.

Per campaign: every assigned user's outcomes in the window after assignment (and the same
before it, for CUPED) from :mod:`churnkit.campaigns.outcomes`; the statistics from
:mod:`churnkit.campaigns.abtest`; one tidy table per campaign under the workspace
(``campaigns/<campaign_id>/results.parquet``, what it came from beside it).

A campaign whose window has not ended for every user (the data stops earlier) is read so
far, with always-valid intervals (safe to look at before the end and again later) and
says so; a finished one gets fixed-horizon intervals.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from churnkit.campaigns.abtest import mixing_variance, results_table, sequential_interval
from churnkit.campaigns.outcomes import METRICS, outcomes
from churnkit.datasets.span import fingerprint
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.io.artifacts import write_table_with_meta
from churnkit.io.warehouse import workspace_assignments

GUARDRAILS = tuple(m.name for m in METRICS if m.guardrail)


@dataclass
class CampaignResult:
    campaign_id: str
    table: pd.DataFrame
    path: Path
    meta: dict[str, Any] = field(default_factory=dict)
    rows: pd.DataFrame | None = None
    """Each assigned user's outcomes (what the table was computed from)."""


def control_of(campaign_id: str, rows: pd.DataFrame, configured: dict[str, str]) -> str:
    """The control variant: configured for the campaign, else declared by the table
    (``is_control``); never guessed from a name. An A/B test needs a control arm and a
    treatment arm with users: anything else is a one-line error saying which is missing."""
    variants = sorted(rows["variant"].unique())
    named = ", ".join(repr(v) for v in variants)
    if campaign_id in configured:
        control = configured[campaign_id]
        if control not in variants:
            raise ChurnkitError(f"campaign {campaign_id}: its control arm {control!r} (campaigns.control."
                                f"{campaign_id}) has no users; its variants are {named}")
    else:
        flags = rows["is_control"] if "is_control" in rows.columns else pd.Series(dtype="boolean")
        declared = rows.loc[flags.fillna(False).astype(bool), "variant"].unique()
        if len(declared) != 1 and flags.notna().any():
            raise ChurnkitError(f"campaign {campaign_id} has no control arm: none of its users is in the variant "
                                f"the source declares control (variants: {named}); for a campaign sent to chosen "
                                f"users set campaigns.design.{campaign_id}: targeted")
        if len(declared) != 1 and len(variants) < 2:
            raise ChurnkitError(f"campaign {campaign_id} has only one variant ({named}) and no control arm: an A/B "
                                f"test needs both; for a campaign sent to chosen users set campaigns.design."
                                f"{campaign_id}: targeted")
        if len(declared) != 1:
            raise ChurnkitError(f"campaign {campaign_id}: which variant is control ({', '.join(variants)})? Set "
                                f"campaigns.control.{campaign_id} in configs/churnkit.yaml, or declare it in the "
                                f"source (assignments: control or control_column)")
        control = str(declared[0])
    if len(variants) < 2:
        raise ChurnkitError(f"campaign {campaign_id} has only one variant ({named}, the control): an A/B test "
                            f"needs a treatment arm with users beside it")
    return control


def check_started(campaign_id: str, rows: pd.DataFrame, data_end: pd.Timestamp) -> None:
    """A campaign first assigned at or after the last event has no outcome window under way:
    nothing to measure yet (a one-line error, not a table of zeros)."""
    first = pd.to_datetime(rows["assigned_ts"], utc=True).min()
    if first >= data_end:
        raise ChurnkitError(f"campaign {campaign_id} was first assigned at {first:%Y-%m-%d %H:%M:%S} UTC, at or "
                            f"after the events end ({data_end:%Y-%m-%d %H:%M:%S} UTC): no outcome window has "
                            f"started; ingest later events first")


def evaluate(project: Project, campaign_ids: list[str] | None = None) -> list[CampaignResult]:
    """Evaluate ``campaign_ids`` (default: every campaign in the assignments table)."""
    con = project.connect()
    events, _ = project.tables(con)
    assignments = workspace_assignments(con, project.workspace)
    if assignments is None:
        raise ChurnkitError("no campaign assignments in the workspace: ingest them with the events (a source "
                            "with an assignments: table, or churnkit ingest --assignments FILE)")
    known = sorted(assignments.select("campaign_id").distinct().execute()["campaign_id"].astype(str))
    ids = list(campaign_ids or known)
    unknown = [c for c in ids if c not in known]
    if unknown:
        raise ChurnkitError(f"no campaign {unknown[0]!r} in the assignments (known: {', '.join(known) or 'none'})")
    settings, act = project.config.campaigns, project.config.kpi.activity
    fp = fingerprint(events)
    data_end = pd.Timestamp(fp["last_ts"])
    data_end = data_end.tz_localize("UTC") if data_end.tzinfo is None else data_end
    chosen = assignments.filter(assignments.campaign_id.isin(ids))
    table = outcomes(events, chosen, settings.window_days, act.include, act.exclude).execute()
    results = []
    for cid in ids:
        rows = table[table["campaign_id"] == cid].reset_index(drop=True)
        results.append(_one(project, cid, rows, data_end, fp))
    return results


def _one(project: Project, cid: str, rows: pd.DataFrame, data_end: pd.Timestamp, fp: dict) -> CampaignResult:
    settings = project.config.campaigns
    check_started(cid, rows, data_end)
    control = control_of(cid, rows, settings.control)
    ends = pd.to_datetime(rows["window_end"], utc=True)
    complete = bool(ends.max() <= data_end)
    notes = []
    metrics = []
    for m in METRICS:
        if m.guardrail and not rows[m.name].any():
            notes.append(f"{m.name}: no such event in any window (not judged)")
            continue
        metrics.append(m.name)
    covariates = {m: f"pre_{m}" for m in metrics if settings.cuped and rows[f"pre_{m}"].std() > 0}
    out = results_table(
        cid, rows, metrics, control, covariates=covariates,
        lower_is_better=[m for m in metrics if m in GUARDRAILS],
        margins={m: settings.margins[m] for m in metrics if m in settings.margins},
        alpha=settings.alpha, correction=settings.correction, srm_threshold=settings.srm_threshold)
    out.insert(3, "control", control)
    out["interval"] = "fixed"
    if not complete:
        out = _always_valid(out, settings.alpha)
        share = float((ends <= data_end).mean())
        notes.append(f"read before its window ended ({share:.0%} of users' windows complete): always-valid "
                     f"intervals, safe to read again later")
    out["complete"] = complete
    path = project.workspace.campaign_results_path(cid)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"campaign_id": cid, "control": control, "variants": sorted(rows["variant"].unique()),
            "users": len(rows), "window_days_default": settings.window_days, "complete": complete,
            "assigned_from": str(pd.to_datetime(rows["assigned_ts"], utc=True).min()),
            "assigned_to": str(pd.to_datetime(rows["assigned_ts"], utc=True).max()),
            "data": fp, "settings": settings.model_dump(), "notes": notes,
            "definitions": {m.name: m.description for m in METRICS}}
    write_table_with_meta(out, meta, path, path.with_suffix(".json"))
    return CampaignResult(cid, out, path, meta, rows)


def _always_valid(out: pd.DataFrame, alpha: float) -> pd.DataFrame:
    """Replace the fixed-horizon intervals with always-valid ones (mixing variance from the
    current standard error) and base the verdict on them."""
    out = out.copy()
    ok = out["se"].to_numpy("float64") > 0
    for i in np.flatnonzero(ok):
        se, eff = float(out.at[i, "se"]), float(out.at[i, "effect"])
        low, high = sequential_interval(eff, se, alpha, tau2=mixing_variance(se, alpha))
        out.at[i, "ci_low"], out.at[i, "ci_high"] = low, high
        if not str(out.at[i, "verdict"]).startswith("blocked"):
            harm_up = out.at[i, "metric"] in GUARDRAILS
            if low > 0 or high < 0:
                out.at[i, "verdict"] = "worse" if (low > 0) == harm_up else "better"
            else:
                out.at[i, "verdict"] = "no detectable effect"
    out["interval"] = "always-valid"
    return out
