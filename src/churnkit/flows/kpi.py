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
from churnkit.monitor.cohorts import (
    Measure,
    Start,
    average_retention,
    cohort_cells,
    cohort_table,
    signup_days,
)
from churnkit.monitor.kpis import GRAINS, KPIS, Grain, business_day, finish, kpi_daily, kpi_table


@dataclass
class KpiOutcome:
    tables: dict[str, pd.DataFrame]
    paths: dict[str, Path]
    meta: dict[str, Any] = field(default_factory=dict)


def meta_path(path: Path) -> Path:
    return path.with_suffix(".json")


def _day_range(fp: dict[str, Any], tz: str) -> tuple[pd.Timestamp, pd.Timestamp, Any, Any]:
    """First and last event times (UTC) and their days in ``tz``."""
    if not fp.get("rows"):
        raise ChurnkitError("the events table is empty: run churnkit ingest first")
    first_ts, last_ts = (pd.Timestamp(fp[k]) for k in ("first_ts", "last_ts"))
    first_ts = first_ts.tz_localize("UTC") if first_ts.tzinfo is None else first_ts
    last_ts = last_ts.tz_localize("UTC") if last_ts.tzinfo is None else last_ts
    return first_ts, last_ts, first_ts.tz_convert(tz).date(), last_ts.tz_convert(tz).date()


def compute_kpis(events: Any, settings: Any, grains: tuple[Grain, ...] = GRAINS,
                 fp: dict[str, Any] | None = None) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """KPI tables per grain for an events table on any engine, and what they were computed
    from: the data's fingerprint, time zone, activity rule, first day, last complete day."""
    fp = fp if fp is not None else fingerprint(events)
    tz = settings.time_zone
    first_ts, last_ts, first_day, last_day = _day_range(fp, tz)
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


STARTS: tuple[Start, ...] = ("first_purchase", "first_active", "signup")
MEASURES: tuple[Measure, ...] = ("purchase", "active")


def compute_cohorts(events: Any, users: Any, settings: Any, grain: Grain = "month",
                    start: Start = "first_purchase", measure: Measure = "purchase",
                    fp: dict[str, Any] | None = None) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, Any]]:
    """The cohort table, its size-weighted averages per period, and what they came from."""
    fp = fp if fp is not None else fingerprint(events)
    tz = settings.time_zone
    first_ts, last_ts, _, last_day = _day_range(fp, tz)
    act = settings.activity
    daily = kpi_daily(events, act.include, act.exclude, tz, first_ts, last_ts)
    signups = None
    if start == "signup":
        if users is None or "signup_ts" not in users.columns:
            raise ChurnkitError("signup cohorts need a users table with signup_ts (ingest one with the events)")
        signups = signup_days(users, business_day(tz, first_ts, last_ts))
    parts = cohort_cells(daily, grain, start, measure, signups)
    table = cohort_table(*(p.execute() for p in parts), grain, last_day)
    meta = {"data": fp, "time_zone": tz, "activity": act.model_dump(), "grain": grain, "start": start,
            "measure": measure, "last_complete_day": last_day}
    return table, average_retention(table), meta


def cohorts(project: Project, grain: Grain = "month", start: Start = "first_purchase",
            measure: Measure = "purchase") -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Compute and write the cohort table under the workspace."""
    events, users = project.tables()
    table, average, meta = compute_cohorts(events, users, project.config.kpi, grain, start, measure)
    path = project.workspace.cohort_path(start, measure, grain)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_table_with_meta(table, {**meta, "average": average.to_dict("records")}, path, meta_path(path))
    return table, average, path
