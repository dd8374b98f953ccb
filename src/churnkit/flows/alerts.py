"""``churnkit alerts``: check the KPI rules, keep the ledger, notify, and move alerts along."""

from __future__ import annotations

import datetime as dt
import json
import urllib.request
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from churnkit.errors import ChurnkitError
from churnkit.flows.kpi import compute_kpis, compute_segments, kpi_source, segment_dimensions
from churnkit.flows.project import Project
from churnkit.io.artifacts import save_parquet
from churnkit.io.locks import exclusive
from churnkit.monitor import ledger as L
from churnkit.monitor.anomalies import Breach, judge
from churnkit.monitor.kpis import KPIS

UNITS = {k.name: k.unit for k in KPIS}
ADDITIVE = {k.name: k.additive for k in KPIS}


@dataclass
class AlertsOutcome:
    ledger: pd.DataFrame
    new: list[str]
    path: Any
    notes: list[str] = field(default_factory=list)

    @property
    def open(self) -> pd.DataFrame:
        return self.ledger[self.ledger["status"] != "resolved"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


def read_ledger(project: Project) -> pd.DataFrame:
    path = project.workspace.alerts_path
    return pd.read_parquet(path) if path.exists() else L.empty()


def _write(project: Project, table: pd.DataFrame) -> None:
    save_parquet(table.astype({c: "object" for c in ("first_period", "last_period")}), project.workspace.alerts_path)


def record(project: Project, found: list[Breach], grain_of: dict[str, str]) -> tuple[pd.DataFrame, list[str]]:
    """Breaches into the ledger as alerts (episodes per rule and segment), under its lock:
    the ledger after, and the ids that are new. KPI rules and model monitoring share it."""
    alerts = L.episodes(found, grain_of)
    with exclusive(project.workspace.alerts_lock, "alerts"):
        merged, new = L.merge(read_ledger(project), alerts, _now())
        _write(project, merged)
    return merged, new


def check(project: Project, tables: dict[str, pd.DataFrame] | None = None,
          segments: dict[str, pd.DataFrame] | None = None) -> AlertsOutcome:
    """Judge every rule on the KPI tables (computed here unless given: totals, and the
    by-segment tables where a rule is per segment or a total's move is explained) and
    update the ledger."""
    settings = project.config.alerts
    rules = settings.rules
    unknown = [r.kpi for r in rules if r.kpi not in UNITS]
    if unknown:
        raise ChurnkitError(f"alert rule on unknown KPI {unknown[0]!r} (known: {', '.join(UNITS)})")
    wanted = tuple(sorted({r.grain for r in rules if r.segment_by or ADDITIVE.get(r.kpi)}))
    if tables is None or (segments is None and wanted):
        events, users = project.tables()
        source = kpi_source(events, project.config.kpi, users, project.config.scoring.segments)
        if tables is None:
            grains = tuple(sorted({r.grain for r in rules}))
            tables, _ = compute_kpis(events, project.config.kpi, grains, source=source)  # type: ignore[arg-type]
        if segments is None and wanted:
            dims, _ = segment_dimensions(source, project.config.kpi)
            segments, _ = compute_segments(source, dims, wanted)  # type: ignore[arg-type]
    found = judge(rules, tables, segments or {}, UNITS, ADDITIVE, settings.explain_by)
    merged, new = record(project, found, {r.name: r.grain for r in rules})
    outcome = AlertsOutcome(merged, new, project.workspace.alerts_path)
    url = settings.webhook_url
    if url and new:
        outcome.notes += notify(url, merged[merged["id"].isin(new)])
    return outcome


def notify(url: str, alerts: pd.DataFrame, timeout: float = 5.0) -> list[str]:
    """POST the new alerts as JSON; a failure is a note, never an error (the ledger has them)."""
    body = json.dumps({"alerts": json.loads(alerts.to_json(orient="records", date_format="iso"))}).encode()
    req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            if resp.status >= 300:
                return [f"webhook {url} answered {resp.status}; the alerts are in the ledger"]
    except Exception as err:  # noqa: BLE001 - any failure of the hook leaves the run alone
        return [f"webhook {url} failed ({type(err).__name__}: {err}); the alerts are in the ledger"]
    return [f"webhook {url}: {len(alerts)} new alert(s) sent"]


def set_status(project: Project, alert_id: str, status: str, by: str | None, note: str | None) -> pd.Series:
    with exclusive(project.workspace.alerts_lock, f"alerts {status}"):
        table = L.set_status(read_ledger(project), alert_id, status, by, note, _now())
        _write(project, table)
    return table[table["id"] == alert_id].iloc[0]
