"""``churnkit kpi``: the KPI tables of a workspace, written with what they were computed from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churnkit.datasets.span import fingerprint
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.io.artifacts import write_table_with_meta
from churnkit.monitor.kpis import GRAINS, KPIS, Grain, finish, kpi_daily, kpi_table


@dataclass
class KpiOutcome:
    tables: dict[str, pd.DataFrame]
    paths: dict[str, Path]
    meta: dict[str, Any] = field(default_factory=dict)


def meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def compute_kpis(events: Any, settings: Any, grains: tuple[Grain, ...] = GRAINS,
                 fp: dict[str, Any] | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """KPI tables per grain for an events table on any engine, and what they were computed
    from: the data's fingerprint, time zone, activity rule, first day, last complete day."""
    fp = fp if fp is not None else fingerprint(events)
    if not fp.get("rows"):
        raise ChurnkitError("the events table is empty: run churnkit ingest first")
    tz = settings.time_zone
    first_ts, last_ts = pd.Timestamp(fp["first_ts"]), pd.Timestamp(fp["last_ts"])
    first_ts = first_ts.tz_localize("UTC") if first_ts.tzinfo is None else first_ts
    last_ts = last_ts.tz_localize("UTC") if last_ts.tzinfo is None else last_ts
    first_day, last_day = first_ts.tz_convert(tz).date(), last_ts.tz_convert(tz).date()
    act = settings.activity
    daily = kpi_daily(events, act.include, act.exclude, tz, first_ts, last_ts)
    tables = {g: finish(kpi_table(daily, g).execute(), g, first_day, last_day) for g in grains}
    meta = {
        "data": fp,
        "time_zone": tz,
        "activity": act.model_dump(),
        "first_day": first_day,
        "last_complete_day": last_day,
        "week_starts": "Monday",
        "definitions": {k.name: {"description": k.description, "unit": k.unit} for k in KPIS},
    }
    return tables, meta


def kpis(project: Project, grains: tuple[Grain, ...] = GRAINS) -> KpiOutcome:
    """Compute and write ``kpis_<grain>.parquet`` (+ ``.json``) under the workspace."""
    events, _ = project.tables()
    tables, meta = compute_kpis(events, project.config.kpi, grains)
    paths = {}
    for grain, table in tables.items():
        path = project.workspace.kpi_path(grain)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table_with_meta(table, {**meta, "grain": grain}, path, meta_path(path))
        paths[grain] = path
    return KpiOutcome(tables, paths, meta)


YEAR_BACK = {"day": pd.Timedelta(days=364), "week": pd.Timedelta(days=364), "month": pd.DateOffset(years=1)}
"""The same period a year earlier: the same weekday (day, week) or the same month."""


def change(table: pd.DataFrame, kpi: str, grain: Grain) -> dict[str, Any]:
    """The latest complete period's value against the previous one and the same period a
    year earlier (None where the data does not reach)."""
    done = table[table["complete"]]
    if done.empty:
        return {"period": None, "value": None, "previous": None, "year_ago": None}
    last = done.iloc[-1]
    prev = done.iloc[-2][kpi] if len(done) > 1 else None
    year = (pd.Timestamp(last["period"]) - YEAR_BACK[grain]).date()
    match = done[done["period"] == year]
    return {"period": last["period"], "value": last[kpi], "previous": prev,
            "year_ago": match.iloc[0][kpi] if len(match) else None}
