"""``churnkit campaign evaluate``: each campaign's A/B results, written and printed.

Per campaign: every assigned user's outcomes in the window after assignment (and the same
before it, for CUPED) from :mod:`churnkit.campaigns.outcomes`; the statistics from
:mod:`churnkit.campaigns.abtest`; one tidy table per campaign under the workspace
(``campaigns/<campaign_id>/results.parquet``, what it came from beside it).

A campaign whose window has not ended for every user (the data stops earlier) is read so
far, with always-valid intervals (safe to look at before the end and again later) and
says so; a finished one gets fixed-horizon intervals.

A campaign's design is declared, never guessed (:func:`design_of`). A ``targeted`` one was
sent to chosen users: there is no control arm, so its recipients are compared with the users
it was not sent to who were active before its start (:data:`NOT_TARGETED`, their window
starting at the campaign's first assignment), over the same metrics, and the table is
descriptive (no p-values, no verdict), with each metric's difference in the pre-period beside
it (``pre_difference``): how different the groups already were before the campaign.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd

from churnkit.campaigns.abtest import mixing_variance, results_table, sequential_interval
from churnkit.campaigns.cupac import cupac_covariate
from churnkit.campaigns.outcomes import METRICS, outcomes
from churnkit.config import CampaignSettings, Design
from churnkit.contracts import ROLE_OUTPUTS
from churnkit.datasets.span import fingerprint
from churnkit.errors import ChurnkitError
from churnkit.features.context import is_activity
from churnkit.flows.project import Project
from churnkit.flows.score import scores_on_days
from churnkit.io.artifacts import write_table_with_meta
from churnkit.io.warehouse import workspace_assignments

GUARDRAILS = tuple(m.name for m in METRICS if m.guardrail)
NOT_TARGETED = "not targeted"
"""The comparison group of a targeted campaign: users it was not sent to, active before it."""


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
    events, _users = project.tables(con)
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
    declared = chosen.group_by("campaign_id").aggregate(
        design=chosen.design.max(), first=chosen.assigned_ts.min()).execute()
    designs = {str(r.campaign_id): design_of(str(r.campaign_id), r.design, settings)
               for r in declared.itertuples()}
    for r in declared.itertuples():
        if designs[str(r.campaign_id)] == "targeted":
            chosen = chosen.union(_comparison(events, chosen, str(r.campaign_id), r.first, act.include, act.exclude))
    table = outcomes(events, chosen, settings.window_days, act.include, act.exclude).execute()
    results = []
    for cid in ids:
        rows = table[table["campaign_id"] == cid].reset_index(drop=True)
        churn = _churn_at_assignment(project, rows) if designs[cid] == "randomised" else None
        results.append(_one(project, cid, rows, data_end, fp, designs[cid], churn))
    return results


CHURN_SCORE = "churn_score_at_assignment"


def _churn_at_assignment(project: Project, rows: pd.DataFrame) -> pd.Series | str:
    """Each assigned user's churn probability from the churn champion, scored as of the day
    of their assignment (features strictly before that midnight: nothing from the send day
    leaks in; NaN for a user with no history then); or why there is none, in words."""
    settings = project.config.campaigns
    if not (settings.cuped and settings.cupac):
        return "CUPAC off (campaigns.cupac or campaigns.cuped is false)"
    if "churn" not in project.config.scoring.roles:
        return "no churn model configured (scoring.churn): plain CUPED"
    score_col = ROLE_OUTPUTS["churn"]["score"]
    days = pd.to_datetime(rows["assigned_ts"], utc=True).dt.floor("D").dt.date
    try:
        scored = scores_on_days(project, pd.DataFrame({"user_id": rows["user_id"], "day": days}), [score_col],
                                roles=("churn",))
    except ChurnkitError as err:
        return f"no churn score at assignment ({str(err).splitlines()[0]}): plain CUPED"
    out = scored[score_col]
    out.attrs["model"] = scored.attrs["models"]
    return out


def design_of(campaign_id: str, declared: str | None, settings: CampaignSettings) -> Design:
    """The campaign's design: the project config's ``campaigns.design``, else the assignments
    table's declaration, else randomised (an A/B test; it still needs a control arm)."""
    if campaign_id in settings.design:
        return settings.design[campaign_id]
    return "targeted" if declared == "targeted" else "randomised"


def _comparison(events: ir.Table, assignments: ir.Table, campaign_id: str, start: pd.Timestamp,
                include: list[str] | None, exclude: list[str]) -> ir.Table:
    """Rows like assignments for the users a targeted campaign was not sent to who were active
    before its start (the same activity rule as ``retained``), assigned at its start."""
    mine = assignments.filter(assignments.campaign_id == campaign_id)
    active = events.filter((events.ts < ibis.literal(start, "timestamp('UTC')"))
                           & is_activity(events.event, include, exclude)).select("user_id").distinct()
    pool = active.filter(~active.user_id.isin(mine.user_id))
    values = {"campaign_id": ibis.literal(campaign_id), "variant": ibis.literal(NOT_TARGETED),
              "assigned_ts": ibis.literal(start), "horizon_days": ibis.null(), "is_control": ibis.literal(True),
              "design": ibis.literal("targeted")}
    schema = assignments.schema()
    return pool.select(**{c: (pool.user_id if c == "user_id" else values[c]).cast(schema[c]) for c in assignments.columns})


def _one(project: Project, cid: str, rows: pd.DataFrame, data_end: pd.Timestamp, fp: dict,
         design: Design, churn: pd.Series | str | None = None) -> CampaignResult:
    settings = project.config.campaigns
    targeted = design == "targeted"
    check_started(cid, rows[rows["variant"] != NOT_TARGETED] if targeted else rows, data_end)
    control = _targeted_control(cid, rows) if targeted else control_of(cid, rows, settings.control)
    ends = pd.to_datetime(rows["window_end"], utc=True)
    complete = bool(ends.max() <= data_end)
    notes = []
    if targeted:
        recipients = int((rows["variant"] != NOT_TARGETED).sum())
        notes.append(f"targeted, not randomised: its {recipients:,} recipients were chosen, so they are compared "
                     f"with the {len(rows) - recipients:,} users it was not sent to who were active before its "
                     f"start; the differences describe the groups and are not effects of the campaign "
                     f"(pre_difference: how far apart they already were before it); no sample ratio check")
    metrics = []
    for m in METRICS:
        if m.guardrail and not rows[m.name].any():
            notes.append(f"{m.name}: no such event in any window (not judged)")
            continue
        metrics.append(m.name)
    covariates = {m: f"pre_{m}" for m in metrics if settings.cuped and not targeted and rows[f"pre_{m}"].std() > 0}
    variance_cut: dict[str, dict[str, float]] = {}
    if isinstance(churn, pd.Series):
        rows, covariates, variance_cut = _cupac(cid, rows, metrics, control, covariates, churn, settings)
        notes.append(f"CUPAC: each metric adjusted by its prediction from its pre-period value and the churn score "
                     f"at assignment ({churn.attrs.get('model')}); variance cut for retained "
                     + _cut_words(variance_cut.get("retained")))
    elif isinstance(churn, str) and covariates:
        notes.append(f"CUPED with each metric's pre-period value; {churn}")
    out = results_table(
        cid, rows, metrics, control, covariates=covariates,
        lower_is_better=[m for m in metrics if m in GUARDRAILS],
        margins={} if targeted else {m: settings.margins[m] for m in metrics if m in settings.margins},
        alpha=settings.alpha, correction=settings.correction, srm_threshold=settings.srm_threshold, design=design)
    out.insert(3, "control", control)
    pre = rows.groupby("variant")[[f"pre_{m}" for m in metrics]].mean()
    out["pre_difference"] = [float(pre.at[r.variant, f"pre_{r.metric}"] - pre.at[control, f"pre_{r.metric}"])
                             for r in out.itertuples()]
    out["interval"] = "descriptive" if targeted else "fixed"
    share = float((ends <= data_end).mean())
    if not complete and not targeted:
        out = _always_valid(out, settings.alpha)
        notes.append(f"read before its window ended ({share:.0%} of users' windows complete): always-valid "
                     f"intervals, safe to read again later")
    elif not complete:
        notes.append(f"read before its window ended ({share:.0%} of users' windows complete)")
    out["complete"] = complete
    path = project.workspace.campaign_results_path(cid)
    path.parent.mkdir(parents=True, exist_ok=True)
    meta = {"campaign_id": cid, "design": design, "control": control, "variants": sorted(rows["variant"].unique()),
            "users": len(rows), "window_days_default": settings.window_days, "complete": complete,
            "assigned_from": str(pd.to_datetime(rows["assigned_ts"], utc=True).min()),
            "assigned_to": str(pd.to_datetime(rows["assigned_ts"], utc=True).max()),
            "data": fp, "settings": settings.model_dump(), "notes": notes, "variance_reduction": variance_cut,
            "definitions": {m.name: m.description for m in METRICS}}
    write_table_with_meta(out, meta, path, path.with_suffix(".json"))
    return CampaignResult(cid, out, path, meta, rows)


def _cupac(cid: str, rows: pd.DataFrame, metrics: list[str], control: str, cuped: dict[str, str],
           churn: pd.Series, settings: CampaignSettings) -> tuple[pd.DataFrame, dict[str, str], dict[str, dict[str, float]]]:
    """The CUPAC covariate per metric (``cupac_<metric>``) and the variance reductions CUPED
    and CUPAC each achieve on it (same rows, same test), for the notes."""
    rows = rows.assign(**{CHURN_SCORE: churn.to_numpy()})
    covariates = dict(cuped)
    for m in metrics:
        predicted = cupac_covariate(rows, m, [f"pre_{m}", CHURN_SCORE])
        if np.std(predicted) > 0:
            rows[f"cupac_{m}"] = predicted
            covariates[m] = f"cupac_{m}"
    cut: dict[str, dict[str, float]] = {}
    for name, covs in (("cuped", cuped), ("cupac", covariates)):
        t = results_table(cid, rows, metrics, control, covariates=covs, alpha=settings.alpha, correction="none",
                          srm_threshold=settings.srm_threshold)
        for r in t.itertuples():
            cut.setdefault(r.metric, {})[name] = float(r.variance_reduction)
    return rows, covariates, cut


def _cut_words(cut: dict[str, float] | None) -> str:
    if not cut:
        return "-"
    return ", ".join(f"{k.upper()} {v:.0%}" if not math.isnan(v) else f"{k.upper()} none" for k, v in cut.items())


def _targeted_control(campaign_id: str, rows: pd.DataFrame) -> str:
    """A targeted campaign's comparison group, which must have users."""
    if not (rows["variant"] == NOT_TARGETED).any():
        raise ChurnkitError(f"campaign {campaign_id} is targeted, and no user it was not sent to was active before "
                            f"its start: there is nobody to compare its recipients with")
    return NOT_TARGETED


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
