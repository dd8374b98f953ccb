"""The weekly operations report, from plain tables: KPI tiles, retention, alerts, lists."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from churnkit.reports.html import png, render, sparkline

TILES = ("active_users", "new_users", "buyers", "paying_rate", "orders", "revenue", "arpu", "aov",
         "view_to_cart", "cart_to_purchase", "push_open_rate")
"""The KPIs with a tile, in order."""


def tiles(week: pd.DataFrame, labels: dict[str, str], weeks_shown: int = 12) -> list[dict[str, Any]]:
    """Per KPI: the last complete week, change against the week before and the same week a
    year earlier (where the data reaches), and a sparkline of recent complete weeks."""
    done = week[week["complete"]].reset_index(drop=True)
    if done.empty:
        return []
    last = done.iloc[-1]
    year = (pd.Timestamp(last["period"]) - pd.Timedelta(days=364)).date()
    ago = done[done["period"] == year]
    out = []
    for kpi in TILES:
        value = last[kpi]
        prev = done.iloc[-2][kpi] if len(done) > 1 else np.nan
        yoy = ago.iloc[0][kpi] if len(ago) else np.nan
        out.append({
            "kpi": kpi, "label": labels.get(kpi, kpi), "value": value,
            "wow": value / prev - 1 if prev and np.isfinite(prev) else None,
            "yoy": value / yoy - 1 if yoy and np.isfinite(yoy) else None,
            "spark": sparkline(done[kpi].tail(weeks_shown)),
        })
    return out


def retention_heatmap(matrix: pd.DataFrame, title: str) -> str:
    """Cohorts x period as a PNG data URI, the share retained written in each cell."""
    m = matrix.iloc[-12:, :13]
    fig = Figure(figsize=(0.55 * max(m.shape[1], 4) + 1.5, 0.32 * max(m.shape[0], 3) + 1))
    ax = fig.subplots()
    ax.imshow(m.to_numpy(dtype="float64"), aspect="auto", cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(m.shape[1]), [str(c) for c in m.columns])
    ax.set_yticks(range(m.shape[0]), [str(i) for i in m.index])
    ax.set_xlabel("weeks since the cohort's first active week")
    ax.set_title(title, fontsize=10)
    for (i, j), v in np.ndenumerate(m.to_numpy(dtype="float64")):
        if np.isfinite(v):
            ax.text(j, i, f"{v:.0%}", ha="center", va="center", fontsize=6, color="white" if v > 0.5 else "black")
    return png(fig)


def weekly_html(context: dict[str, Any]) -> str:
    return render("weekly.html.j2", **context)
