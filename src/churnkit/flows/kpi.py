"""``churnkit kpi``: the KPI tables of a workspace, written with what they were computed from."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from churnkit.config import SegmentSettings
from churnkit.datasets.span import fingerprint
from churnkit.errors import ChurnkitError
from churnkit.flows.project import Project
from churnkit.io.artifacts import write_table_with_meta
from churnkit.metrics import latest_change
from churnkit.monitor.cohorts import (
    Measure,
    Start,
    average_retention,
    cohort_cells,
    cohort_table,
    heatmap,
    signup_days,
)
from churnkit.monitor.kpis import (
    GRAINS,
    KPIS,
    Grain,
    StageCutDays,
    business_day,
    finish,
    finish_segments,
    kpi_daily,
    kpi_table,
    period_states,
    user_periods,
)
from churnkit.reports.plots import cohort_heatmap, save_all
from churnkit.scoring.segments import RFMSegmenter
from churnkit.scoring.stages import StageCuts, gap_counts, lifecycle_stage, stage_cuts


@dataclass
class KpiOutcome:
    tables: dict[str, pd.DataFrame]
    paths: dict[str, Path]
    meta: dict[str, Any] = field(default_factory=dict)
    segments: dict[str, pd.DataFrame] = field(default_factory=dict)
    """Per grain, every KPI by segment (long: dimension, segment, period ...)."""
    segment_paths: dict[str, Path] = field(default_factory=dict)


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


STAGE, TIER = "lifecycle_stage", "rfm_tier"
"""Segment dimensions that are a user's state at each period's start, not an attribute."""


@dataclass
class KpiSource:
    """What every KPI table of one run is computed from: the daily user table in the
    business time zone, the users table, the lifecycle cuts and the run's description."""

    daily: Any
    users: Any
    cuts: StageCuts
    segments: SegmentSettings
    first_day: Any
    last_day: Any
    meta: dict[str, Any]


def kpi_source(events: Any, settings: Any, users: Any = None, segments: SegmentSettings | None = None,
               fp: dict[str, Any] | None = None) -> KpiSource:
    """The daily table and stage cuts (the scoring stages' cuts, from the data's rhythm
    unless ``segments`` sets them) for ``events`` on any engine."""
    fp = fp if fp is not None else fingerprint(events)
    tz = settings.time_zone
    first_ts, last_ts, first_day, last_day = _day_range(fp, tz)
    act = settings.activity
    segments = segments or SegmentSettings()
    cuts = stage_cuts(segments, gap_counts(events, act, last_day + dt.timedelta(days=1)))
    meta = {
        "data": fp,
        "time_zone": tz,
        "activity": act.model_dump(),
        "first_day": first_day,
        "last_complete_day": last_day,
        "week_starts": "Monday",
        "stage_cuts": cuts.to_dict(),
        "definitions": {k.name: {"description": k.description, "unit": k.unit} for k in KPIS},
    }
    daily = kpi_daily(events, act.include, act.exclude, tz, first_ts, last_ts)
    return KpiSource(daily, users, cuts, segments, first_day, last_day, meta)


def _flow_cuts(source: KpiSource) -> StageCutDays:
    return StageCutDays(source.cuts.silent_min_days, source.cuts.churned_days)


def compute_kpis(events: Any, settings: Any, grains: tuple[Grain, ...] = GRAINS,
                 fp: dict[str, Any] | None = None, source: KpiSource | None = None,
                 ) -> tuple[dict[str, pd.DataFrame], dict[str, Any]]:
    """KPI tables (totals) per grain for an events table on any engine, and what they were
    computed from: the data's fingerprint, time zone, activity rule, stage cuts, first day
    and last complete day."""
    src = source or kpi_source(events, settings, fp=fp)
    tables = {g: finish(kpi_table(user_periods(src.daily, g, _flow_cuts(src))).execute(), g, src.first_day,
                        src.last_day) for g in grains}
    return tables, src.meta


def segment_dimensions(source: KpiSource, settings: Any) -> tuple[list[str], list[str]]:
    """The dimensions to cut KPIs by, and notes on attributes left out (too many values)."""
    attrs = [] if source.users is None else [c for c in source.users.columns if c not in ("user_id", "signup_ts")]
    if settings.segment_by is not None:
        unknown = [d for d in settings.segment_by if d not in (*attrs, STAGE, TIER)]
        if unknown:
            raise ChurnkitError(f"kpi.segment_by: no dimension {unknown[0]!r} (user attributes: "
                                f"{', '.join(attrs) or 'none'}; or {STAGE}, {TIER})")
        return list(settings.segment_by), []
    notes, keep = [], []
    if attrs:
        u = source.users
        counts = u.aggregate(**{c: u[c].nunique() for c in attrs}).execute().iloc[0]
        for c in attrs:
            if int(counts[c]) <= settings.max_segment_values:
                keep.append(c)
            else:
                notes.append(f"attribute {c} has {int(counts[c]):,} values (> kpi.max_segment_values = "
                             f"{settings.max_segment_values}): not a KPI segment")
    return [*keep, STAGE, TIER], notes


def compute_segments(source: KpiSource, dimensions: list[str], grains: tuple[Grain, ...] = GRAINS,
                     ) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Per grain, a long table of every KPI by segment of each dimension (see
    :func:`~churnkit.monitor.kpis.finish_segments`); notes on dimensions left out."""
    import ibis

    out, notes = {}, []
    for grain in grains:
        # one pass over the daily table per grain, not one per dimension: the user-period rows
        # are computed once and every dimension (and the states) reads them (Ibis's own
        # cache() leaves a temp table it cannot drop on DuckDB, so an Arrow memtable)
        up = ibis.memtable(user_periods(source.daily, grain, _flow_cuts(source)).to_pyarrow())
        out[grain] = _segments_of_grain(up, source, dimensions, grain, notes)
    return out, notes


def _segments_of_grain(up: Any, source: KpiSource, dimensions: list[str], grain: Grain,
                       notes: list[str]) -> pd.DataFrame:
    import ibis

    states = None
    parts = []
    for dim in dimensions:
        if dim in (STAGE, TIER):
            if states is None:
                states = period_states(up).execute()
            labels = _state_segments(states, dim, source)
            if labels is None:
                if f"{dim}: nobody has bought yet, so no RFM tiers" not in notes:
                    notes.append(f"{dim}: nobody has bought yet, so no RFM tiers")
                continue
            segs = ibis.memtable(states[["period", "user_id"]].assign(segment=labels.to_numpy()))
        else:
            u = source.users
            segs = u.select("user_id", segment=u[dim].cast("string"))
        table = kpi_table(up, segs).execute()
        parts.append(finish_segments(table, dim, grain, source.first_day, source.last_day))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _state_segments(states: pd.DataFrame, dim: str, source: KpiSource) -> pd.Series | None:
    """Each (period, user)'s stage or RFM tier at the period's start, by the scoring code."""
    if dim == STAGE:
        return lifecycle_stage(states, source.segments, source.cuts)
    try:
        return RFMSegmenter(source.segments).fit(states).transform(states)["rfm_tier"]
    except ChurnkitError:
        return None


def kpis(project: Project, grains: tuple[Grain, ...] = GRAINS, segments: bool = True) -> KpiOutcome:
    """Compute and write ``kpis_<grain>.parquet`` (+ ``.json``) under the workspace, and the
    by-segment tables ``kpis_<grain>_segments.parquet`` unless ``segments`` is False."""
    events, users = project.tables()
    settings = project.config.kpi
    source = kpi_source(events, settings, users, project.config.scoring.segments)
    tables, meta = compute_kpis(events, settings, grains, source=source)
    paths, notes, by, by_paths = {}, [], {}, {}
    for grain, table in tables.items():
        path = project.workspace.kpi_path(grain)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_table_with_meta(table, {**meta, "grain": grain}, path, meta_path(path))
        paths[grain] = path
    if segments:
        dims, notes = segment_dimensions(source, settings)
        by, more = compute_segments(source, dims, grains)
        notes += more
        for grain, table in by.items():
            path = project.workspace.kpi_path(grain, segments=True)
            write_table_with_meta(table, {**meta, "grain": grain, "dimensions": dims, "notes": notes}, path,
                                  meta_path(path))
            by_paths[grain] = path
    return KpiOutcome(tables, paths, {**meta, "notes": notes}, by, by_paths)


YEAR_BACK = {"day": pd.Timedelta(days=364), "week": pd.Timedelta(days=364), "month": pd.DateOffset(years=1)}
"""The same period a year earlier: the same weekday (day, week) or the same month."""


def change(table: pd.DataFrame, kpi: str, grain: Grain) -> dict[str, Any]:
    """The latest complete period's value against the previous one and the same period a
    year earlier (None where the data does not reach)."""
    return latest_change(table, kpi, YEAR_BACK[grain])


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


HEATMAPS = (("retention", "in period k", True), ("retention_on_or_after", "in period k or later", True),
            ("revenue_per_user", "net revenue per cohort user in period k", False))
"""The cohort heatmaps written beside each cohort table: (column, what a cell says, a share?)."""


def cohorts(project: Project, grain: Grain = "month", start: Start = "first_purchase",
            measure: Measure = "purchase") -> tuple[pd.DataFrame, pd.DataFrame, Path]:
    """Compute and write the cohort table under the workspace, with its heatmaps beside it
    (``<table>_<column>.png``: retention, unbounded retention, revenue per user)."""
    events, users = project.tables()
    table, average, meta = compute_cohorts(events, users, project.config.kpi, grain, start, measure)
    path = project.workspace.cohort_path(start, measure, grain)
    path.parent.mkdir(parents=True, exist_ok=True)
    what = f"{start.replace('_', ' ')} {grain} cohorts, {measure}"
    figures = {f"{path.stem}_{col}": cohort_heatmap(heatmap(table, col), f"{what}: {label}", grain, last=36,
                                                    periods=36, share=share)
               for col, label, share in HEATMAPS}
    images = save_all(figures, path.parent) if len(table) else []
    write_table_with_meta(table, {**meta, "average": average.to_dict("records"),
                                  "heatmaps": [p.name for p in images]}, path, meta_path(path))
    return table, average, path
