"""The weekly operations report, from plain tables: KPI tiles, lifecycle moves, segments,
retention, alerts, lists."""

from __future__ import annotations

from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from churnkit.metrics import latest_change, relative_change
from churnkit.reports.html import png, render, sparkline
from churnkit.reports.plots import cohort_heatmap

TILES = ("active_users", "new_users", "buyers", "paying_rate", "orders", "revenue", "arpu", "aov",
         "view_to_cart", "cart_to_purchase", "push_open_rate")
"""The KPIs with a tile, in order."""


def tiles(week: pd.DataFrame, labels: dict[str, str], weeks_shown: int = 12) -> list[dict[str, Any]]:
    """Per KPI: the last complete week, change against the week before and the same week a
    year earlier (where the data reaches), and a sparkline of recent complete weeks."""
    done = week[week["complete"]].reset_index(drop=True)
    if done.empty:
        return []
    out = []
    for kpi in TILES:
        value, wow, yoy = _changes(done, kpi)
        out.append({"kpi": kpi, "label": labels.get(kpi, kpi), "value": value, "wow": wow, "yoy": yoy,
                    "spark": sparkline(done[kpi].tail(weeks_shown))})
    return out


MOVES = (("new_users", "new", "first active"), ("went_silent_users", "active", "silent"),
         ("churned_users", "silent", "churned"), ("reactivated_users", "silent", "active"),
         ("resurrected_users", "churned", "active"))
"""The lifecycle moves the report shows: (KPI, from stage, to stage)."""


WEEK_YEAR_BACK = pd.Timedelta(days=364)
"""The same week a year earlier: 52 weeks back, the same weekday (as ``churnkit kpi`` says)."""


def _changes(done: pd.DataFrame, kpi: str) -> tuple[float, float | None, float | None]:
    """The last complete week's value, its change on the week before and on a year earlier."""
    c = latest_change(done, kpi, WEEK_YEAR_BACK)
    return c["value"], relative_change(c["value"], c["previous"]), relative_change(c["value"], c["year_ago"])


def stage_moves(week: pd.DataFrame, weeks_shown: int = 12) -> dict[str, Any] | None:
    """How many users moved between lifecycle stages in the last complete week (with the
    change on the week before and a sparkline), and a flow diagram of it."""
    done = week[week["complete"]].reset_index(drop=True)
    if done.empty:
        return None
    rows = []
    for kpi, src, dst in MOVES:
        value, wow, _ = _changes(done, kpi)
        rows.append({"kpi": kpi, "from": src, "to": dst, "value": value, "wow": wow,
                     "spark": sparkline(done[kpi].tail(weeks_shown))})
    return {"rows": rows, "chart": _flow_chart({r["kpi"]: r["value"] for r in rows})}


def _flow_chart(n: dict[str, float]) -> str:
    """Stages left to right; moves forward above the line, returns to active below it."""
    from matplotlib.patches import FancyArrowPatch

    fig = Figure(figsize=(8.6, 2.4))
    ax = fig.subplots()
    ax.set_xlim(0, 10)
    ax.set_ylim(-0.2, 3)
    ax.axis("off")
    x = {"first active": 0.9, "active": 3.6, "silent": 6.3, "churned": 9.0}
    y, half = 2.0, 0.62
    for name, at in x.items():
        ax.text(at, y, name, ha="center", va="center", fontsize=10,
                bbox={"boxstyle": "round,pad=0.45", "fc": "#eef3fa", "ec": "#2f6db5"})

    def arrow(a: str, b: str, value: float, rad: float, label_y: float, dy: float, caption: str = "") -> None:
        start = (x[a] + (half if x[b] > x[a] else -0.2), y + dy)
        end = (x[b] - (half if x[b] > x[a] else -0.2), y + dy)
        ax.add_patch(FancyArrowPatch(start, end, connectionstyle=f"arc3,rad={rad}", arrowstyle="-|>",
                                     mutation_scale=12, color="#2f6db5", lw=1.2))
        ax.text((x[a] + x[b]) / 2, label_y, f"{value:,.0f}{caption}", ha="center", va="center", fontsize=9,
                bbox={"boxstyle": "round,pad=0.15", "fc": "white", "ec": "none"})

    arrow("first active", "active", n["new_users"], 0.0, y + 0.3, 0.0)
    arrow("active", "silent", n["went_silent_users"], 0.0, y + 0.3, 0.0)
    arrow("silent", "churned", n["churned_users"], 0.0, y + 0.3, 0.0)
    arrow("silent", "active", n["reactivated_users"], -0.35, 0.95, -0.3, " back from silent")
    arrow("churned", "active", n["resurrected_users"], -0.3, 0.45, -0.3, " recalled (back from churned)")
    return png(fig)


def segment_tables(by: pd.DataFrame, most: int = 10) -> list[dict[str, Any]]:
    """Per dimension, the last complete week's active users, buyers and revenue by segment,
    with the change on the week before (the largest ``most`` segments)."""
    out = []
    if by is None or by.empty:
        return out
    for dim, table in by.groupby("dimension", sort=False):
        rows = []
        for seg, g in table.groupby("segment", sort=True):
            done = g[g["complete"]].reset_index(drop=True)
            if done.empty:
                continue
            row = {"segment": seg}
            for kpi in ("active_users", "buyers", "revenue"):
                row[kpi], row[f"{kpi}_wow"], _ = _changes(done, kpi)
            rows.append(row)
        rows.sort(key=lambda r: -float(r["active_users"]))
        out.append({"dimension": dim, "label": dim.replace("_", " "), "rows": rows[:most],
                    "more": max(len(rows) - most, 0)})
    return out


def retention_heatmap(matrix: pd.DataFrame, title: str) -> str:
    """Weekly cohorts x weeks as a PNG data URI, the share retained written in each cell."""
    return png(cohort_heatmap(matrix, title, "week"))


def model_health(histories: dict[str, pd.DataFrame], cards: dict[str, str]) -> list[dict[str, Any]]:
    """One row per monitored problem from its monitoring history (``monitor.history``): the
    latest run's status, headline now against test, drift, advice, a sparkline of the
    headline over past runs (realised where known, else expected) and its model card."""
    out = []
    for problem, h in histories.items():
        if not len(h):
            continue
        last = h.iloc[-1]
        realised = last["status"] == "realised"
        trail = h["value_now"].astype("float64")
        out.append({"problem": problem, "version": int(last["version"]), "as_of": last["as_of"],
                    "status": last["status"], "headline": last["headline"], "test": last["test_value"],
                    "now": last["value_now"],
                    "now_is": "realised" if realised else "expected" if pd.notna(last["value_now"]) else "",
                    "drifted": int(last["features_drifted"]),
                    "checked": int(last["features_checked"]), "drivers": last["drifted_drivers"] or "",
                    "retrain": bool(last["retrain_advised"]), "why": last["why"],
                    "spark": sparkline(trail.to_numpy()), "card": cards.get(problem)})
    return out


def weekly_html(context: dict[str, Any]) -> str:
    return render("weekly.html.j2", **context)
