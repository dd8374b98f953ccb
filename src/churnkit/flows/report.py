"""``churnkit report weekly``: one self-contained HTML file for the operations team."""

from __future__ import annotations

import datetime as dt
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from churnkit.campaigns.timeline import cumulative_effect
from churnkit.contracts import VALUE_AT_RISK
from churnkit.datasets.span import fingerprint
from churnkit.flows import experiments
from churnkit.flows.alerts import read_ledger
from churnkit.flows.campaigns import evaluate
from churnkit.flows.kpi import (
    compute_cohorts,
    compute_kpis,
    compute_segments,
    kpi_source,
    segment_dimensions,
)
from churnkit.flows.monitor import read_history
from churnkit.flows.project import Project
from churnkit.flows.uplift import held_out_evaluations
from churnkit.monitor.cohorts import heatmap
from churnkit.monitor.expected import CAVEAT
from churnkit.reports.campaign import campaign_html, design, figures, uplift_models
from churnkit.reports.weekly import (
    model_health,
    retention_heatmap,
    segment_tables,
    stage_moves,
    tiles,
    weekly_html,
)


@dataclass
class ReportOutcome:
    path: Path
    week: dt.date | None
    context: dict[str, Any]


def _scores(project: Project) -> dict[str, Any] | None:
    path = project.workspace.latest_scores()
    if path is None:
        return None
    s = pd.read_parquet(path)
    if VALUE_AT_RISK not in s.columns:
        return None
    by = {}
    for col, name in (("rfm_tier", "tier"), ("lifecycle_stage", "stage")):
        if col in s.columns:
            g = s.groupby(col, dropna=False)[VALUE_AT_RISK].agg(["size", "sum"]).sort_values("sum", ascending=False)
            by[name] = [{"key": str(k), "users": int(r["size"]), "value": float(r["sum"])} for k, r in g.iterrows()]
    return {"as_of": path.stem.removeprefix("scores_"), "users": len(s), "value_at_risk": float(s[VALUE_AT_RISK].sum()),
            "by": by}


def _model_health(project: Project, report: Path) -> list[dict[str, Any]]:
    """The monitored problems' latest health (empty before ``churnkit monitor``), with links
    to their model cards where written."""
    ws = project.workspace
    histories, cards = {}, {}
    for folder in sorted(ws.monitor_dir.glob("*")) if ws.monitor_dir.exists() else []:
        history = read_history(project, folder.name)
        if not len(history):
            continue
        histories[folder.name] = history
        card = ws.model_card_path(folder.name, int(history.iloc[-1]["version"]))
        if card.exists():
            cards[folder.name] = os.path.relpath(card, report.parent)
    return model_health(histories, cards)


def weekly(project: Project, out: Path | None = None) -> ReportOutcome:
    """Compute this week's report from the workspace and write it (default:
    ``WORKSPACE/reports/weekly_<week>.html``)."""
    events, users = project.tables()
    settings = project.config.kpi
    fp = fingerprint(events)
    source = kpi_source(events, settings, users, project.config.scoring.segments, fp=fp)
    tables, meta = compute_kpis(events, settings, ("week",), source=source)
    week_table = tables["week"]
    dims, _ = segment_dimensions(source, settings)
    by, _ = compute_segments(source, dims, ("week",))
    done = week_table[week_table["complete"]]
    week = done["period"].iloc[-1] if len(done) else None
    labels = {k: k.replace("_", " ") for k in week_table.columns}
    cohort, _, _ = compute_cohorts(events, None, settings, "week", "first_active", "active", fp=fp)
    matrix = heatmap(cohort)
    ledger = read_ledger(project)
    open_alerts = ledger[ledger["status"] != "resolved"].to_dict("records")
    path = out or project.workspace.report_path("weekly", week or meta["last_complete_day"])
    lists = sorted(project.workspace.lists_dir.glob("*.*")) if project.workspace.lists_dir.exists() else []
    context = {
        "week": week or "-",
        "time_zone": meta["time_zone"],
        "last_day": meta["last_complete_day"],
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "not_activity": ", ".join(meta["activity"]["exclude"]) or "none",
        "fingerprint": str(fp.get("digest", fp.get("rows"))),
        "tiles": tiles(week_table, labels),
        "moves": stage_moves(week_table),
        "cuts": source.cuts.describe(),
        "segments": segment_tables(by["week"]),
        "heatmap": retention_heatmap(matrix, "Weekly activity cohorts") if matrix.shape[0] and matrix.shape[1] > 1 else None,
        "alerts": open_alerts,
        "alerts_checked": project.workspace.alerts_path.exists(),
        "scores": _scores(project),
        "lists": [{"name": p.name, "href": os.path.relpath(p, path.parent)} for p in lists[-4:]],
        "models": _model_health(project, path),
        "caveat": CAVEAT,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(weekly_html(context), encoding="utf-8")
    tmp.replace(path)
    return ReportOutcome(path, week, context)


def campaign(project: Project, campaign_id: str, out: Path | None = None) -> Path:
    """Evaluate one campaign (its results are written as ``campaign evaluate`` writes them)
    and write its report (default: beside the results, ``report.html``). A campaign
    evaluated from a per-customer table is rendered from what was stored."""
    table_experiment = experiments.stored(project, campaign_id)
    if table_experiment is not None:
        return _write_campaign(experiments.report_context(table_experiment),
                               out or project.workspace.campaign_report_path(campaign_id))
    (result,) = evaluate(project, [campaign_id])
    t, rows, meta = result.table, result.rows, result.meta
    settings = project.config.campaigns
    window = int(rows["horizon_days"].dropna().max()) if "horizon_days" in rows and rows["horizon_days"].notna().any() \
        else settings.window_days
    guard = t[t["non_inferiority"].notna()].assign(margin=lambda g: g["metric"].map(settings.margins))
    context = {
        "campaign_id": campaign_id,
        "assigned_from": meta["assigned_from"][:19], "assigned_to": meta["assigned_to"][:19],
        "window": window, "data_end": str(meta["data"].get("last_ts"))[:19],
        "generated": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "fingerprint": str(meta["data"].get("digest", meta["data"].get("rows"))),
        "design": design(rows, meta["control"], float(t["srm_p_value"].iloc[0]), bool(t["srm_failed"].iloc[0])),
        "complete": meta["complete"],
        "targeted": meta.get("design") == "targeted",
        "metrics": t.to_dict("records"),
        "guardrails": guard.to_dict("records"),
        "notes": meta["notes"],
        "correction": settings.correction,
        "figures": figures(t, cumulative_effect(rows, meta["control"], window)),
        "uplift_models": uplift_models(held_out_evaluations(project, campaign_id)),
    }
    return _write_campaign(context, out or project.workspace.campaign_report_path(campaign_id))


def _write_campaign(context: dict[str, Any], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(campaign_html(context), encoding="utf-8")
    tmp.replace(path)
    return path
